package k8s

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// TestOverlays renders every overlay (and dev with the TCP-probe component)
// and checks the output against the binaries: no disagreement at all, the
// namespace, the replicas and the kind of probe each overlay is for.
func TestOverlays(t *testing.T) {
	f := gather(t)
	for _, s := range serviceNames {
		t.Logf("%s: reads %s; gRPC %v; called by %v", s, strings.Join(keysOf(f.env[s]), " "), f.grpcServices[s], f.callers[s])
	}
	withTCP, err := memFS("/k8s")
	if err != nil {
		t.Fatal(err)
	}
	writeOverlay(t, withTCP, "/k8s/overlays/dev-tcp-probes", `
resources: [../dev]
components: [../../components/tcp-probes]
`)
	for _, tc := range []struct {
		name, dir string
		fsys      filesys.FileSystem
		namespace string
		replicas  func(int32) bool
		probe     string
	}{
		{"dev", "overlays/dev", filesys.MakeFsOnDisk(), "cutover-dev", func(n int32) bool { return n == 1 }, "grpc"},
		{"prod", "overlays/prod", filesys.MakeFsOnDisk(), "cutover", func(n int32) bool { return n >= 2 }, "grpc"},
		{"dev+tcp-probes", "/k8s/overlays/dev-tcp-probes", withTCP, "cutover-dev", func(n int32) bool { return n == 1 }, "tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := render(tc.fsys, tc.dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range check(r, f) {
				t.Error(p)
			}
			if r.namespaces[tc.namespace] == nil || len(r.namespaces) != 1 {
				t.Errorf("namespaces %v, want only %s", keysOf(setOf(r.namespaces)), tc.namespace)
			}
			for _, ns := range namespacesOf(r) {
				if ns != tc.namespace {
					t.Errorf("an object in namespace %q, want %q", ns, tc.namespace)
				}
			}
			if len(r.deployments) != len(serviceNames) {
				t.Errorf("%d Deployments, want the %d services", len(r.deployments), len(serviceNames))
			}
			for _, s := range serviceNames {
				d := r.deployments[s]
				if d == nil {
					continue // reported by check
				}
				if d.Spec.Replicas == nil || !tc.replicas(*d.Spec.Replicas) {
					t.Errorf("%s: replicas %v not right for %s", s, d.Spec.Replicas, tc.name)
				}
				ct := d.Spec.Template.Spec.Containers[0]
				if s == "gateway" {
					continue // HTTPS probes, checked by check
				}
				for _, p := range []string{probeKind(ct.ReadinessProbe.ProbeHandler.GRPC != nil), probeKind(ct.LivenessProbe.ProbeHandler.GRPC != nil)} {
					if p != tc.probe {
						t.Errorf("%s: %s probe, want %s", s, p, tc.probe)
					}
				}
			}
			var listed []string
			if cm := r.configMaps[operatorSecrets]; cm != nil {
				listed = keysOf(setOf(cm.Data))
			}
			t.Logf("%d Deployments, %d Services, %d PodDisruptionBudgets, %d NetworkPolicies, %d ServiceMonitors; Secrets the operator makes: %s",
				len(r.deployments), len(r.services), len(r.pdbs), len(r.netpols), len(r.monitors), strings.Join(listed, " "))
		})
	}
}

// TestChecksCatchMistakes breaks the dev overlay one way at a time, in
// memory, and wants the check to name the break: the checks cannot pass
// by checking nothing.
func TestChecksCatchMistakes(t *testing.T) {
	f := gather(t)
	for _, tc := range []struct {
		name, patches, want string
	}{
		{"container port is not the listen port", jsonPatch("Deployment", "loader",
			`{op: replace, path: /spec/template/spec/containers/0/ports/0/containerPort, value: 7099}`),
			"loader: no containerPort 7004"},
		{"listen on loopback", envPatch("validator", `{name: CUTOVER_VALIDATOR_ADDR, value: "127.0.0.1:7003"}`),
			"listens on 127.0.0.1 only"},
		{"probe on another port", jsonPatch("Deployment", "extractor",
			`{op: replace, path: /spec/template/spec/containers/0/readinessProbe/grpc/port, value: 7002}`),
			"extractor: readinessProbe gRPC port 7002, the service listens on 7001"},
		{"plaintext gRPC probe", jsonPatch("Deployment", "loader",
			`{op: remove, path: /spec/template/spec/containers/0/livenessProbe/grpc/mode}`),
			"loader: livenessProbe gRPC without mode TLS"},
		{"health of a service the binary does not register", jsonPatch("Deployment", "loader",
			`{op: replace, path: /spec/template/spec/containers/0/readinessProbe/grpc/service, value: cutover.loader.v1.Loader}`),
			`asks health of "cutover.loader.v1.Loader"`},
		{"gateway probe on a route it lacks", jsonPatch("Deployment", "gateway",
			`{op: replace, path: /spec/template/spec/containers/0/livenessProbe/httpGet/path, value: /health}`),
			"gateway: livenessProbe GET /health: the service has no such route"},
		{"env name misspelt", jsonPatch("Deployment", "loader",
			`{op: add, path: /spec/template/spec/containers/0/env/-, value: {name: CUTOVER_LOADER_ADRR, value: ":7004"}}`),
			"loader: env CUTOVER_LOADER_ADRR is not read by the loader binary"},
		{"another binary's setting", jsonPatch("Deployment", "loader",
			`{op: add, path: /spec/template/spec/containers/0/env/-, value: {name: CUTOVER_WORKERS, value: "8"}}`),
			"loader: env CUTOVER_WORKERS is not read by the loader binary"},
		{"database URL in the manifest", envPatch("orchestrator", `{name: CUTOVER_CONTROL_URL, value: "postgres://cutover:pw@db/cutover", valueFrom: null}`),
			"orchestrator: env CUTOVER_CONTROL_URL is a literal"},
		{"metrics address off its port", envPatch("extractor", `{name: CUTOVER_METRICS_ADDR, value: ":9090"}`),
			`extractor: containerPort metrics is 9464, CUTOVER_METRICS_ADDR=":9090"`},
		{"stage dialled on the wrong port", envPatch("orchestrator", `{name: CUTOVER_TRANSFORMER_ADDR, value: "dns:///transformer:7009"}`),
			"the transformer listens on 7002"},
		{"stage dialled by a name its certificate lacks", envPatch("orchestrator", `{name: CUTOVER_VALIDATOR_ADDR, value: "dns:///validator.cutover-dev.svc.cluster.local:7003"}`),
			"the validator's certificate does not name"},
		{"stage dialled without dns:///", envPatch("gateway", `{name: CUTOVER_ORCHESTRATOR_ADDR, value: "orchestrator:7005"}`),
			"without dns:/// the client does not resolve every orchestrator pod"},
		{"stage behind a ClusterIP", jsonPatch("Service", "validator", `{op: remove, path: /spec/clusterIP}`),
			"Service validator is not headless"},
		{"gateway let into the loader", jsonPatch("NetworkPolicy", "loader",
			`{op: add, path: /spec/ingress/0/from/-, value: {podSelector: {matchLabels: {app.kubernetes.io/name: gateway}}}}`),
			"loader: NetworkPolicy lets in the gateway"},
		{"validator kept out of the transformer", jsonPatch("NetworkPolicy", "transformer",
			`{op: remove, path: /spec/ingress/0/from/1}`),
			"transformer: NetworkPolicy keeps out the validator"},
		{"loader kept out of the extractor", jsonPatch("NetworkPolicy", "extractor",
			`{op: remove, path: /spec/ingress/0/from/2}`),
			"extractor: NetworkPolicy keeps out the loader"},
		{"stage open to all", jsonPatch("NetworkPolicy", "loader", `{op: remove, path: /spec/ingress/0/from}`),
			"loader: port 7004 is open beyond its callers"},
		{"Secret nobody makes", jsonPatch("Deployment", "loader",
			`{op: replace, path: /spec/template/spec/volumes/0/secret/secretName, value: loader-certs}`),
			`loader: volume tls Secret "loader-certs" is neither rendered nor listed`},
		{"file the Secret does not hold", envPatch("loader", `{name: CUTOVER_TLS_KEY, value: /etc/cutover/tls/key.pem}`),
			`has no key "key.pem"`},
		{"Secret file the user cannot read", jsonPatch("Deployment", "orchestrator",
			`{op: replace, path: /spec/template/spec/volumes/1/secret/defaultMode, value: 256}`),
			"orchestrator: volume tokens mode 0400 is not readable by user 65532"},
		{"disruption budget that blocks drains", jsonPatch("PodDisruptionBudget", "loader",
			`{op: remove, path: /spec/maxUnavailable}`, `{op: add, path: /spec/minAvailable, value: 1}`),
			"loader: PodDisruptionBudget loader minAvailable 1 of 1 replicas blocks every drain"},
		{"metrics not scraped", jsonPatch("ServiceMonitor", "cutover",
			`{op: replace, path: /spec/endpoints/0/port, value: http-metrics}`),
			"gateway: no ServiceMonitor scrapes its metrics"},
		{"field the API does not have", jsonPatch("Deployment", "loader",
			`{op: add, path: /spec/template/spec/containers/0/readinessProbe/grpc/tls, value: true}`),
			`strict decode: error unmarshaling JSON: while decoding JSON: json: unknown field "tls"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := memFS("/k8s")
			if err != nil {
				t.Fatal(err)
			}
			writeOverlay(t, mem, "/k8s/overlays/broken", "resources: [../dev]\npatches:\n"+tc.patches)
			r, err := render(mem, "/k8s/overlays/broken")
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("render failed, but not with %q: %v", tc.want, err)
				}
				return
			}
			problems := check(r, f)
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Errorf("no problem names %q; got %d:\n%s", tc.want, len(problems), strings.Join(problems, "\n"))
		})
	}
}

// jsonPatch is a kustomization patches entry: JSON 6902 ops on one object.
func jsonPatch(kind, name string, ops ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  - target: {kind: %s, name: %s}\n    patch: |-\n", kind, name)
	for _, op := range ops {
		fmt.Fprintf(&b, "      - %s\n", op)
	}
	return b.String()
}

// envPatch is a strategic merge of one env entry (merged by name) into a
// service's container.
func envPatch(service, env string) string {
	return fmt.Sprintf(`  - patch: |-
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: %[1]s}
      spec:
        template:
          spec:
            containers:
              - name: %[1]s
                env:
                  - %[2]s
`, service, env)
}

func writeOverlay(t *testing.T, fsys filesys.FileSystem, dir, kustomization string) {
	t.Helper()
	if err := fsys.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization)); err != nil {
		t.Fatal(err)
	}
}

func probeKind(grpc bool) string {
	if grpc {
		return "grpc"
	}
	return "tcp"
}

func setOf[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// namespacesOf is the namespace of every namespaced object rendered.
func namespacesOf(r *rendered) []string {
	var out []string
	for _, o := range r.deployments {
		out = append(out, o.Namespace)
	}
	for _, o := range r.services {
		out = append(out, o.Namespace)
	}
	for _, o := range r.pdbs {
		out = append(out, o.Namespace)
	}
	for _, o := range r.netpols {
		out = append(out, o.Namespace)
	}
	for _, o := range r.configMaps {
		out = append(out, o.Namespace)
	}
	for _, o := range r.secrets {
		out = append(out, o.Namespace)
	}
	for _, o := range r.monitors {
		out = append(out, o.Namespace)
	}
	return out
}
