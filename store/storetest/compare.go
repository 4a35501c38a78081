package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

var (
	timeType = reflect.TypeFor[time.Time]()
	rawType  = reflect.TypeFor[json.RawMessage]()
)

// assertEqual fails the test unless got, read back from the store, equals
// want, the value written, field by field. Times compare as instants at
// microsecond precision (the precision stores keep) and must come back in
// UTC; JSON documents compare by meaning; nil and empty slices are equal.
func assertEqual(t *testing.T, got, want any) {
	t.Helper()
	var diffs []string
	diff("", reflect.ValueOf(got), reflect.ValueOf(want), &diffs)
	for _, d := range diffs {
		t.Errorf("%T%s", want, d)
	}
	if len(diffs) > 0 {
		t.FailNow()
	}
}

func diff(path string, got, want reflect.Value, out *[]string) {
	if got.IsValid() != want.IsValid() {
		*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, got, want))
		return
	}
	if !got.IsValid() {
		return
	}
	switch {
	case got.Type() == timeType:
		g, w := got.Interface().(time.Time), want.Interface().(time.Time)
		if !g.Equal(w.Truncate(time.Microsecond)) {
			*out = append(*out, fmt.Sprintf("%s: got %s, want %s", path, g.Format(time.RFC3339Nano), w.Truncate(time.Microsecond).Format(time.RFC3339Nano)))
		} else if !g.IsZero() && g.Location() != time.UTC {
			*out = append(*out, fmt.Sprintf("%s: %s is not in UTC", path, g))
		}
		return
	case got.Type() == rawType:
		g, w := got.Bytes(), want.Bytes()
		if !jsonEqual(g, w) {
			*out = append(*out, fmt.Sprintf("%s: got JSON %s, want %s", path, g, w))
		}
		return
	}
	switch got.Kind() {
	case reflect.Pointer, reflect.Interface:
		if got.IsNil() || want.IsNil() {
			if got.IsNil() != want.IsNil() {
				*out = append(*out, fmt.Sprintf("%s: got %v, want %v", path, got, want))
			}
			return
		}
		diff(path, got.Elem(), want.Elem(), out)
	case reflect.Struct:
		for i := range got.NumField() {
			f := got.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			diff(path+"."+f.Name, got.Field(i), want.Field(i), out)
		}
	case reflect.Slice:
		if got.Type().Elem().Kind() == reflect.Uint8 {
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				*out = append(*out, fmt.Sprintf("%s: got %q, want %q", path, got.Bytes(), want.Bytes()))
			}
			return
		}
		if got.Len() != want.Len() {
			*out = append(*out, fmt.Sprintf("%s: got %d elements %v, want %d %v", path, got.Len(), got, want.Len(), want))
			return
		}
		for i := range got.Len() {
			diff(fmt.Sprintf("%s[%d]", path, i), got.Index(i), want.Index(i), out)
		}
	case reflect.Map:
		if got.Len() != want.Len() {
			*out = append(*out, fmt.Sprintf("%s: got %d entries, want %d", path, got.Len(), want.Len()))
		}
		for _, k := range want.MapKeys() {
			g := got.MapIndex(k)
			if !g.IsValid() {
				*out = append(*out, fmt.Sprintf("%s[%v]: missing", path, k))
				continue
			}
			diff(fmt.Sprintf("%s[%v]", path, k), g, want.MapIndex(k), out)
		}
	default:
		if !reflect.DeepEqual(got.Interface(), want.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: got %#v, want %#v", path, got.Interface(), want.Interface()))
		}
	}
}

func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}
