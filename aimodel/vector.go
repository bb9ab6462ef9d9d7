package aimodel

import (
	"errors"
	"math"
	"strconv"
	"unsafe"
)

// Dot returns the dot product of a and b over their common length.
func Dot(a, b []float32) float32 {
	n := min(len(a), len(b))
	a, b = a[:n], b[:n]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= n; i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < n; i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// Norm returns the Euclidean (L2) norm of v.
func Norm(v []float32) float32 { return float32(math.Sqrt(float64(Dot(v, v)))) }

// Normalize scales v in place to unit length (a zero vector stays zero)
// and returns it.
func Normalize(v []float32) []float32 {
	n := Norm(v)
	if n == 0 {
		return v
	}
	inv := 1 / n
	for i := range v {
		v[i] *= inv
	}
	return v
}

// Cosine returns the cosine similarity of a and b, in [-1, 1]; 0 when
// either is a zero vector. For vectors already normalised, Dot is the
// same and cheaper.
func Cosine(a, b []float32) float32 {
	na, nb := Norm(a), Norm(b)
	if na == 0 || nb == 0 {
		return 0
	}
	return Dot(a, b) / (na * nb)
}

// ErrNotVector is returned by ParseVector for input that is not a JSON
// array of numbers.
var ErrNotVector = errors.New("not a JSON array of numbers")

// ParseVector parses a JSON array of numbers into dst[:0] (grown as
// needed) and returns it. It allocates nothing once dst is large enough.
func ParseVector(dst []float32, b []byte) ([]float32, error) {
	dst, _, err := parseVector(dst[:0], b, true)
	return dst, err
}

// parseVector checks that b is a JSON array of numbers and returns how
// many it holds; with keep, it appends them to dst too.
func parseVector(dst []float32, b []byte, keep bool) ([]float32, int, error) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return dst, 0, ErrNotVector
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		if skipSpace(b, i+1) != len(b) {
			return dst, 0, ErrNotVector
		}
		return dst, 0, nil
	}
	for n := 1; ; n++ {
		j := i
		for j < len(b) && (b[j] == '-' || b[j] == '+' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || (b[j] >= '0' && b[j] <= '9')) {
			j++
		}
		if j == i {
			return dst, 0, ErrNotVector
		}
		f, err := strconv.ParseFloat(unsafe.String(&b[i], j-i), 32)
		if err != nil {
			return dst, 0, ErrNotVector
		}
		if keep {
			dst = append(dst, float32(f))
		}
		i = skipSpace(b, j)
		if i >= len(b) {
			return dst, 0, ErrNotVector
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case ']':
			if skipSpace(b, i+1) != len(b) {
				return dst, 0, ErrNotVector
			}
			return dst, n, nil
		default:
			return dst, 0, ErrNotVector
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// AppendVector appends v as a JSON array, each element in the shortest
// form that reads back as the same float32 (NaN and ±Inf as 0).
func AppendVector(dst []byte, v []float32) []byte {
	dst = append(dst, '[')
	for i, f := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		// zeros (most of a hashed embedding), NaN and ±Inf: "0"
		if f == 0 || math.Float32bits(f)&0x7f800000 == 0x7f800000 {
			dst = append(dst, '0')
			continue
		}
		dst = strconv.AppendFloat(dst, float64(f), 'g', -1, 32)
	}
	return append(dst, ']')
}
