package stage

import (
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A checksum asked of a source kind with no database to compute in (a
// file) is refused with FailedPrecondition carrying an ErrorInfo of this
// reason and domain: the loader then compares the table by replay.
const (
	NoDatabaseReason = "NO_DATABASE"
	NoDatabaseDomain = "extractor.cutover"
)

// ReasonStatus is a status of code and msg with an ErrorInfo naming why,
// for a caller that acts on the reason rather than on the message text.
func ReasonStatus(code codes.Code, msg, reason, domain string, md map[string]string) error {
	st := status.New(code, msg)
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: domain, Metadata: md}); err == nil {
		st = d
	}
	return st.Err()
}

// HasReason reports whether err is a status error of code with that
// ErrorInfo, anywhere in err's chain (an UpstreamError's own status keeps
// the code but not the details).
func HasReason(err error, code codes.Code, reason, domain string) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		se, ok := err.(interface{ GRPCStatus() *status.Status })
		if !ok {
			continue
		}
		st := se.GRPCStatus()
		if st.Code() != code {
			continue
		}
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason && info.GetDomain() == domain {
				return true
			}
		}
	}
	return false
}
