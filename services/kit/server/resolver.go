package server

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver"
)

// ListScheme is a target naming several replicas of one service by address,
// "list:///10.0.0.5:7004,10.0.0.6:7004": calls go round robin over the
// replicas that answer (Dial's default service config), so a killed
// replica's share moves to the others. Kubernetes needs none of this (a
// headless Service and dns:/// do the same); it is for replicas started
// by hand or as processes on one machine.
const ListScheme = "list"

func init() { resolver.Register(listBuilder{}) }

type listBuilder struct{}

func (listBuilder) Scheme() string { return ListScheme }

func (listBuilder) Build(t resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	addrs, err := listAddrs(t.Endpoint())
	if err != nil {
		return nil, err
	}
	st := resolver.State{}
	for _, a := range addrs {
		st.Addresses = append(st.Addresses, resolver.Address{Addr: a})
	}
	if err := cc.UpdateState(st); err != nil {
		return nil, err
	}
	return listResolver{}, nil
}

// listAddrs are a list target's host:port addresses.
func listAddrs(endpoint string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(endpoint, ",") {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("%s:/// target: %q is not host:port: %w", ListScheme, a, err)
		}
		out = append(out, a)
	}
	return out, nil
}

type listResolver struct{}

func (listResolver) ResolveNow(resolver.ResolveNowOptions) {}
func (listResolver) Close()                                {}

// listAuthority is the TLS server name of a list target: its first
// address's host (the replicas of one service share its certificate).
func listAuthority(target string) ([]grpc.DialOption, error) {
	rest, ok := strings.CutPrefix(target, ListScheme+":///")
	if !ok {
		return nil, nil
	}
	addrs, err := listAddrs(rest)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addrs[0])
	return []grpc.DialOption{grpc.WithAuthority(host)}, nil
}
