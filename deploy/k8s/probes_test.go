package k8s

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cutover/cutover/services/kit/pki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestProbesAgainstTheBinaries runs each service as the dev overlay
// configures it (its env, its Secret volumes filled from `cutover certs`
// files, its /tmp) and probes it as the kubelet would: the readiness and
// liveness probes must pass, the same gRPC probe without TLS must fail
// (why the manifests say mode: TLS), and the ServiceMonitor's path must
// answer Prometheus text on the metrics address. The addresses move to
// free loopback ports; which ports the manifests name is TestOverlays'
// business. The orchestrator is left out: it does not start without its
// control database, and its server is the stages' (kit/server).
func TestProbesAgainstTheBinaries(t *testing.T) {
	f := gather(t)
	r, err := render(filesys.MakeFsOnDisk(), "overlays/dev")
	if err != nil {
		t.Fatal(err)
	}
	mon := r.monitors["cutover"]
	if mon == nil || len(mon.Spec.Endpoints) != 1 {
		t.Fatal("want the ServiceMonitor cutover with one endpoint")
	}
	certs := t.TempDir()
	if err := pki.WriteDir(certs, serviceNames); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"extractor", "transformer", "validator", "loader", "gateway"} {
		t.Run(s, func(t *testing.T) {
			t.Parallel()
			d := r.deployments[s]
			ct := d.Spec.Template.Spec.Containers[0]
			addr, metrics := freeAddr(t), freeAddr(t)
			env := podEnv(t, s, d.Spec.Template.Spec.Volumes, ct, certs, map[string]string{addrEnv(s): addr, metricsEnv: metrics})
			running, stop := start(t, filepath.Join(f.bin, s), env)
			ctx, cancel := context.WithTimeout(running, 60*time.Second)
			defer cancel()
			for _, p := range []struct {
				kind  string
				probe *corev1.Probe
			}{{"readiness", ct.ReadinessProbe}, {"liveness", ct.LivenessProbe}} {
				if err := eventually(ctx, func() error { return probe(ctx, p.probe, addr) }); err != nil {
					t.Fatalf("%s probe: %v", p.kind, err)
				}
			}
			if g := ct.ReadinessProbe.GRPC; g != nil {
				plain := *ct.ReadinessProbe
				plain.GRPC = &corev1.GRPCAction{Port: g.Port, Service: g.Service}
				if err := probe(ctx, &plain, addr); err == nil {
					t.Error("a plaintext gRPC probe passed: mode TLS would not be needed")
				} else {
					t.Logf("plaintext gRPC probe fails as expected: %v", err)
				}
			}
			ep := mon.Spec.Endpoints[0]
			body, err := get(ctx, ep.Scheme+"://"+metrics+ep.Path, "")
			if err != nil {
				t.Fatalf("scrape: %v", err)
			}
			if !strings.Contains(body, "# TYPE ") {
				t.Errorf("%s%s is not Prometheus text: %.200q", metrics, ep.Path, body)
			}
			if err := stop(); err != nil {
				t.Errorf("SIGTERM: %v", err)
			}
		})
	}
}

// podEnv is the container's literal env as the pod would see it, with the
// Secret volumes written under a temporary root (each key a file, as the
// kubelet mounts them) and the paths and addresses moved there.
func podEnv(t *testing.T, s string, vols []corev1.Volume, ct corev1.Container, certs string, addrs map[string]string) []string {
	root := t.TempDir()
	byName := map[string]corev1.Volume{}
	for _, v := range vols {
		byName[v.Name] = v
	}
	for _, m := range ct.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		v := byName[m.Name]
		if v.Secret == nil {
			continue
		}
		// What make-secrets.sh puts in the Secret, from `cutover certs`.
		files := map[string]string{}
		if v.Secret.SecretName == s+"-tls" {
			files = map[string]string{"ca.crt": "ca.pem", "tls.crt": s + ".pem", "tls.key": s + "-key.pem"}
		}
		if len(files) == 0 {
			t.Fatalf("volume %s: no test material for Secret %s", v.Name, v.Secret.SecretName)
		}
		for key, src := range files {
			b, err := os.ReadFile(filepath.Join(certs, src))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, key), b, 0o400); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + root, "TMPDIR=" + filepath.Join(root, "tmp")}
	for _, e := range ct.Env {
		if e.ValueFrom != nil {
			continue // GOMEMLIMIT from the limits: the kubelet's to fill in
		}
		v := e.Value
		if a, ok := addrs[e.Name]; ok {
			v = a
		}
		for _, m := range ct.VolumeMounts {
			if strings.HasPrefix(v, m.MountPath+"/") {
				v = filepath.Join(root, v)
				break
			}
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}

// start runs a binary; running ends when it exits, stop sends SIGTERM and
// waits for a clean exit.
func start(t *testing.T, bin string, env []string) (running context.Context, stop func() error) {
	cmd := exec.Command(bin)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	running, exited := context.WithCancel(context.Background())
	go func() { err := cmd.Wait(); exited(); done <- err }()
	stopped := false
	stop = func() error {
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return fmt.Errorf("still running 30s after SIGTERM")
		}
	}
	t.Cleanup(func() {
		if !stopped {
			_ = stop()
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), out.String())
		}
	})
	return running, stop
}

// probe does what the kubelet does for one probe against addr.
func probe(ctx context.Context, p *corev1.Probe, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	switch {
	case p.GRPC != nil:
		// mode TLS: TLS without verifying the certificate, no client
		// certificate (the kubelet has none of the service's CA).
		creds := insecure.NewCredentials()
		if p.GRPC.Mode != nil && *p.GRPC.Mode == corev1.GRPCProbeModeTLS {
			creds = credentials.NewTLS(&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // as the kubelet
		}
		cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer cc.Close()
		svc := ""
		if p.GRPC.Service != nil {
			svc = *p.GRPC.Service
		}
		res, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			return err
		}
		if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health of %q: %s", svc, res.GetStatus())
		}
		return nil
	case p.TCPSocket != nil:
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	case p.HTTPGet != nil:
		// The kubelet sends Host: <pod IP>:<port>, a name the gateway does
		// not answer on /v1/.
		_, err := get(ctx, strings.ToLower(string(p.HTTPGet.Scheme))+"://"+addr+p.HTTPGet.Path, "10.0.0.1:8080")
		return err
	}
	return fmt.Errorf("no probe handler")
}

// get fetches url (HTTPS unverified, like a kubelet probe) and wants 200.
func get(ctx context.Context, url, host string) (string, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true} //nolint:gosec // as the kubelet
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	if host != "" {
		req.Host = host
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s: %.200s", url, res.Status, b)
	}
	return string(b), err
}

// eventually retries f until it succeeds or ctx ends (a process starting).
func eventually(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
