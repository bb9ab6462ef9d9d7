package protocol

// ForEachMember calls fn with the raw key (the bytes between the quotes,
// still escaped) and the raw value span [start, end) of every member of
// the JSON object obj, in order, until fn returns false. It reports an
// error when obj is not one JSON object. It allocates nothing.
func ForEachMember(obj []byte, fn func(key []byte, start, end int) bool) error {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return &Error{Code: CodeBadJSON, Message: "not a JSON object"}
	}
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		if skipWS(obj, i+1) != len(obj) {
			return &Error{Code: CodeBadJSON, Message: "data after the object"}
		}
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return &Error{Code: CodeBadJSON, Message: "object key expected"}
		}
		kEnd, _, err := scanString(obj, i)
		if err != nil {
			return err
		}
		key := obj[i+1 : kEnd-1]
		i, err = expectColon(obj, kEnd)
		if err != nil {
			return err
		}
		i = skipWS(obj, i)
		vEnd, err := skipValue(obj, i, 1)
		if err != nil {
			return err
		}
		if !fn(key, i, vEnd) {
			return nil
		}
		var done bool
		i, done, err = nextMember(obj, vEnd, '}')
		if err != nil {
			return err
		}
		if done {
			if skipWS(obj, i) != len(obj) {
				return &Error{Code: CodeBadJSON, Message: "data after the object"}
			}
			return nil
		}
		i = skipWS(obj, i)
	}
}
