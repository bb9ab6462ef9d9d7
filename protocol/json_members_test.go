package protocol

import (
	"strings"
	"testing"
)

func TestForEachMember(t *testing.T) {
	obj := []byte(` { "a" : 1, "b\"x":{"c":[1,2]} ,"d":"s"} `)
	var got []string
	if err := ForEachMember(obj, func(k []byte, s, e int) bool {
		got = append(got, string(k)+"="+string(obj[s:e]))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ";") != `a=1;b\"x={"c":[1,2]};d="s"` {
		t.Fatalf("got %q", got)
	}
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":1,}`, `{"a":1} x`, `{"a":1`} {
		if err := ForEachMember([]byte(bad), func([]byte, int, int) bool { return true }); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if err := ForEachMember([]byte(`{}`), func([]byte, int, int) bool { t.Fatal("called"); return true }); err != nil {
		t.Fatal(err)
	}
}
