// Package secrets finds the fields of a job's messages that hold
// credentials, by name, so that sealing them at rest (jobstore) and
// redacting them for callers (jobspec.Redacted) cover every such field of
// every message, including source kinds added later: a new source with a
// `dsn` field is covered without a change here.
package secrets

import (
	"cmp"
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Kind is what a secret field holds.
type Kind int

const (
	// None: not a secret.
	None Kind = iota
	// ConnString: a DSN or URL that may carry a password (redacted by
	// masking the password, keeping the rest readable).
	ConnString
	// Opaque: a password or token as such (redacted whole).
	Opaque
)

// fieldKinds are the names of string fields that hold credentials. Names,
// not field numbers: the contracts name such fields this way in every
// package (TargetSpec.dsn, PostgresSource.dsn, MysqlSource.dsn today).
var fieldKinds = map[protoreflect.Name]Kind{
	"dsn": ConnString, "url": ConnString, "uri": ConnString, "connection_string": ConnString,
	"password": Opaque, "passwd": Opaque, "token": Opaque, "secret": Opaque, "api_key": Opaque,
}

// FieldKind says whether fd is a secret field, and of which kind. Only
// string fields (singular or repeated) can be.
func FieldKind(fd protoreflect.FieldDescriptor) Kind {
	if fd.Kind() != protoreflect.StringKind || fd.IsMap() {
		return None
	}
	return fieldKinds[fd.Name()]
}

// Rewrite replaces every non-empty secret string in m, at any depth
// (nested messages, repeated messages, message values of maps, oneofs),
// with what f returns for it. path names the field as specs do
// ("tables[0].source.postgres.dsn"). It stops at f's first error, which it
// returns naming the path. m is changed in place.
func Rewrite(m proto.Message, f func(path string, k Kind, v string) (string, error)) error {
	if m == nil {
		return nil
	}
	return rewrite(m.ProtoReflect(), "", f)
}

func rewrite(m protoreflect.Message, prefix string, f func(string, Kind, string) (string, error)) error {
	if !m.IsValid() {
		return nil
	}
	// Collect first: Range must not see the message change under it. In
	// field-number order, so that the first error is always the same one.
	var fields []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		fields = append(fields, fd)
		return true
	})
	slices.SortFunc(fields, func(a, b protoreflect.FieldDescriptor) int { return cmp.Compare(a.Number(), b.Number()) })
	for _, fd := range fields {
		path := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() == nil {
				continue
			}
			var err error
			m.Get(fd).Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				err = rewrite(v.Message(), fmt.Sprintf("%s[%v].", path, k.Interface()), f)
				return err == nil
			})
			if err != nil {
				return err
			}
		case fd.IsList():
			k := FieldKind(fd)
			if fd.Message() == nil && k == None {
				continue
			}
			l := m.Mutable(fd).List()
			for i := 0; i < l.Len(); i++ {
				ip := fmt.Sprintf("%s[%d]", path, i)
				if fd.Message() != nil {
					if err := rewrite(l.Get(i).Message(), ip+".", f); err != nil {
						return err
					}
				} else if v := l.Get(i).String(); v != "" {
					nv, err := call(f, ip, k, v)
					if err != nil {
						return err
					}
					l.Set(i, protoreflect.ValueOfString(nv))
				}
			}
		case fd.Message() != nil:
			if err := rewrite(m.Mutable(fd).Message(), path+".", f); err != nil {
				return err
			}
		default:
			k := FieldKind(fd)
			if k == None {
				continue
			}
			if v := m.Get(fd).String(); v != "" {
				nv, err := call(f, path, k, v)
				if err != nil {
					return err
				}
				m.Set(fd, protoreflect.ValueOfString(nv))
			}
		}
	}
	return nil
}

func call(f func(string, Kind, string) (string, error), path string, k Kind, v string) (string, error) {
	nv, err := f(path, k, v)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return nv, nil
}
