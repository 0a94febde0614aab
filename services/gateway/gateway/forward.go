package gateway

import (
	"context"
	"net"
	"net/http"

	"google.golang.org/grpc/metadata"
)

// callerContext carries the REST caller to the orchestrator the way
// grpc-gateway does for its own routes: the bearer token (the orchestrator
// decides what the caller may do; the gateway has no rights of its own) and
// the client address for the audit log.
func callerContext(r *http.Request) context.Context {
	var kv []string
	if a := r.Header.Get("Authorization"); a != "" {
		kv = append(kv, "authorization", a)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		kv = append(kv, "x-forwarded-for", host)
	}
	return metadata.AppendToOutgoingContext(r.Context(), kv...)
}
