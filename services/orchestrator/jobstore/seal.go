package jobstore

import (
	"errors"
	"fmt"

	"github.com/cutover/cutover/services/kit/dsn"
	"github.com/cutover/cutover/services/kit/sealbox"
	"github.com/cutover/cutover/services/orchestrator/secrets"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Secrets at rest: every credential field of a message the control schema
// stores as JSON (a job's spec above all: its target and source DSNs) is
// sealed with the store's key (package sealbox) before it is written and
// opened after it is read, so a dump or a reader of the control database
// sees no password. Values stored before sealing began are plain and are
// read as they are.

// ErrSealed: a stored secret does not open with this store's key (another
// replica stored it with another key, or the key file changed).
var ErrSealed = errors.New("stored secret does not open with this orchestrator's secret key (--secret-key-file must be the key the job was stored with)")

// WriteKeyFile creates a key file at path for --secret-key-file (a new
// random key, mode 0600) unless one is there already, which it keeps: a
// development stack calls it on first use.
func WriteKeyFile(path string) error { return sealbox.WriteKeyFile(path) }

// sealedJSON encodes m for storage with its secrets sealed; m itself is
// left as it is.
func (s *Store) sealedJSON(m proto.Message) ([]byte, error) {
	if m == nil || !m.ProtoReflect().IsValid() {
		return protojson.Marshal(m)
	}
	c := proto.Clone(m)
	if err := secrets.Rewrite(c, func(_ string, _ secrets.Kind, v string) (string, error) {
		return s.box.Seal(v), nil
	}); err != nil {
		return nil, err
	}
	return protojson.Marshal(c)
}

// openJSON decodes stored JSON into m and opens its sealed secrets; a
// plain value (stored before sealing) is taken as it is. An error names
// the field, never its value.
func (s *Store) openJSON(data []byte, m proto.Message) error {
	if err := protojson.Unmarshal(data, m); err != nil {
		return err
	}
	return secrets.Rewrite(m, func(_ string, _ secrets.Kind, v string) (string, error) {
		if !sealbox.IsSealed(v) {
			return v, nil
		}
		p, err := s.box.Open(v)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrSealed, err)
		}
		return p, nil
	})
}

// scrub hides credentials in free text the control schema keeps (error
// messages of jobs and partitions, audit details): a stage's error may
// quote a DSN, and a stored message is read back by every caller.
func scrub(s string) string { return dsn.Scrub(s) }
