package k8s

import (
	"fmt"
	"net"
	"path"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cutover/cutover/services/kit/config"
)

// operatorSecrets is the ConfigMap listing the Secrets the operator makes
// (base/operator-secrets.yaml): name → its keys, space separated.
const operatorSecrets = "cutover-operator-secrets"

// metricsEnv is where every service serves /metrics (plain HTTP).
var metricsEnv = config.EnvName("metrics-addr")

// check returns every way the rendered manifests disagree with the
// binaries; empty means they agree.
func check(r *rendered, f *facts) []string {
	c := &checker{r: r, f: f}
	for _, s := range serviceNames {
		c.service(s)
	}
	c.monitors()
	sort.Strings(c.problems)
	return c.problems
}

type checker struct {
	r        *rendered
	f        *facts
	problems []string
}

func (c *checker) errorf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// serving is a service's own port: its listen address variable's port, the
// container port that carries it and that port's name.
type serving struct {
	port     int32
	portName string
}

func (c *checker) service(s string) {
	d := c.r.deployments[s]
	if d == nil {
		c.errorf("%s: no Deployment", s)
		return
	}
	if len(d.Spec.Template.Spec.Containers) != 1 {
		c.errorf("%s: %d containers, want the service's one", s, len(d.Spec.Template.Spec.Containers))
		return
	}
	if !selects(d.Spec.Selector, d.Spec.Template.Labels) {
		c.errorf("%s: the Deployment's selector does not select its own pods", s)
	}
	ct := &d.Spec.Template.Spec.Containers[0]
	if img := imageName(ct.Image); img != s {
		c.errorf("%s: image %q is not the %s binary's image (…/%s)", s, ct.Image, s, s)
	}
	env := c.env(s, ct)
	own := c.listen(s, ct, env)
	c.metricsPort(s, ct, env)
	c.probes(s, ct, own)
	c.tls(s, env)
	c.secrets(s, d)
	c.files(s, d, ct)
	c.dials(s, env)
	c.serviceObject(s, d, ct, own)
	c.pdb(s, d)
	c.networkPolicy(s, d, ct, own)
	c.writableTmp(s, d, ct)
}

// env checks every CUTOVER_* variable is one the binary reads, and returns
// them by name.
func (c *checker) env(s string, ct *corev1.Container) map[string]corev1.EnvVar {
	env := map[string]corev1.EnvVar{}
	for _, e := range ct.Env {
		if _, dup := env[e.Name]; dup {
			c.errorf("%s: env %s set twice", s, e.Name)
		}
		env[e.Name] = e
		if strings.HasPrefix(e.Name, "CUTOVER_") && !c.f.env[s][e.Name] {
			c.errorf("%s: env %s is not read by the %s binary (it reads %s)", s, e.Name, s, strings.Join(keysOf(c.f.env[s]), ", "))
		}
		// DSNs carry passwords (DESIGN.md invariant 5): never in a manifest.
		if strings.HasSuffix(e.Name, "_URL") && e.Value != "" {
			c.errorf("%s: env %s is a literal; a database URL must come from a Secret (secretKeyRef)", s, e.Name)
		}
	}
	for _, ef := range ct.EnvFrom {
		// Names from a Secret's keys cannot be checked against the binary.
		c.errorf("%s: envFrom %s: name each variable with valueFrom instead, so it can be checked", s, refName(ef))
	}
	return env
}

// listen checks the service's listen address: reachable from outside the
// pod, on the container port of the same number.
func (c *checker) listen(s string, ct *corev1.Container, env map[string]corev1.EnvVar) serving {
	name := addrEnv(s)
	if !c.f.env[s][name] {
		c.errorf("%s: the binary does not read %s", s, name)
		return serving{}
	}
	e, ok := env[name]
	if !ok {
		c.errorf("%s: %s not set: the binary would listen on its loopback default", s, name)
		return serving{}
	}
	port, ok := c.listenPort(s, e)
	if !ok {
		return serving{}
	}
	cp := containerPortByNumber(ct, port)
	if cp == nil {
		c.errorf("%s: no containerPort %d for %s=%q (ports: %s)", s, port, name, e.Value, portsString(ct))
		return serving{}
	}
	for _, p := range ct.Ports {
		if p.ContainerPort != port && p.Name != "metrics" {
			c.errorf("%s: containerPort %d (%s) is no address the binary listens on (%s=%q)", s, p.ContainerPort, p.Name, name, e.Value)
		}
	}
	return serving{port: port, portName: cp.Name}
}

func (c *checker) listenPort(s string, e corev1.EnvVar) (int32, bool) {
	host, p, err := net.SplitHostPort(e.Value)
	n, perr := strconv.Atoi(p)
	switch {
	case err != nil || perr != nil || n <= 0 || n > 65535:
		c.errorf("%s: %s=%q is not a host:port listen address", s, e.Name, e.Value)
		return 0, false
	case host != "" && host != "0.0.0.0" && host != "::":
		c.errorf("%s: %s=%q listens on %s only: unreachable from other pods and the kubelet", s, e.Name, e.Value, host)
		return 0, false
	}
	return int32(n), true
}

// metricsPort checks /metrics is served on a container port named metrics.
func (c *checker) metricsPort(s string, ct *corev1.Container, env map[string]corev1.EnvVar) {
	e, ok := env[metricsEnv]
	if !ok {
		c.errorf("%s: %s not set: no /metrics", s, metricsEnv)
		return
	}
	port, ok := c.listenPort(s, e)
	if !ok {
		return
	}
	cp := containerPortByName(ct, "metrics")
	switch {
	case cp == nil:
		c.errorf("%s: no containerPort named metrics", s)
	case cp.ContainerPort != port:
		c.errorf("%s: containerPort metrics is %d, %s=%q", s, cp.ContainerPort, metricsEnv, e.Value)
	}
}

// probes checks readiness and liveness ask the server on its own port what
// it serves: gRPC health (over TLS: the servers have no plaintext mode)
// naming a service the binary registers, a TCP connect, or an HTTPS GET of
// a route the service has.
func (c *checker) probes(s string, ct *corev1.Container, own serving) {
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"readinessProbe", ct.ReadinessProbe}, {"livenessProbe", ct.LivenessProbe}} {
		if p.probe == nil {
			c.errorf("%s: no %s", s, p.kind)
			continue
		}
		h := p.probe.ProbeHandler
		switch {
		case h.GRPC != nil:
			if len(c.f.grpcServices[s]) == 0 {
				c.errorf("%s: %s is gRPC, but the binary serves no gRPC", s, p.kind)
				continue
			}
			if h.GRPC.Port != own.port {
				c.errorf("%s: %s gRPC port %d, the service listens on %d", s, p.kind, h.GRPC.Port, own.port)
			}
			if h.GRPC.Mode == nil || *h.GRPC.Mode != corev1.GRPCProbeModeTLS {
				c.errorf("%s: %s gRPC without mode TLS: the server speaks only TLS, a plaintext probe always fails", s, p.kind)
			}
			svc := ""
			if h.GRPC.Service != nil {
				svc = *h.GRPC.Service
			}
			if svc != "" && !contains(c.f.grpcServices[s], svc) {
				c.errorf("%s: %s asks health of %q, the binary registers %s", s, p.kind, svc, strings.Join(c.f.grpcServices[s], ", "))
			}
			if svc == "" && p.kind == "readinessProbe" {
				c.errorf("%s: readinessProbe should name the service it waits for (%s)", s, strings.Join(c.f.grpcServices[s], ", "))
			}
		case h.TCPSocket != nil:
			if n, ok := resolvePort(ct, h.TCPSocket.Port); !ok || n != own.port {
				c.errorf("%s: %s TCP port %s, the service listens on %d", s, p.kind, h.TCPSocket.Port.String(), own.port)
			}
		case h.HTTPGet != nil:
			if n, ok := resolvePort(ct, h.HTTPGet.Port); !ok || n != own.port {
				c.errorf("%s: %s HTTP port %s, the service listens on %d", s, p.kind, h.HTTPGet.Port.String(), own.port)
			}
			if h.HTTPGet.Scheme != corev1.URISchemeHTTPS {
				c.errorf("%s: %s over %s: the service speaks only HTTPS", s, p.kind, h.HTTPGet.Scheme)
			}
			if !c.f.servesHTTPGet(s, h.HTTPGet.Path) {
				c.errorf("%s: %s GET %s: the service has no such route", s, p.kind, h.HTTPGet.Path)
			}
		default:
			c.errorf("%s: %s checks nothing the service serves", s, p.kind)
		}
	}
}

// tls checks the service gets a certificate: there is no plaintext mode
// (kit/server SecurityFlags.Build refuses to start without one).
func (c *checker) tls(s string, env map[string]corev1.EnvVar) {
	_, dir := env[config.EnvName("tls-dir")]
	_, ca := env[config.EnvName("tls-ca")]
	_, cert := env[config.EnvName("tls-cert")]
	_, key := env[config.EnvName("tls-key")]
	if !dir && !(ca && cert && key) {
		c.errorf("%s: neither CUTOVER_TLS_DIR nor CUTOVER_TLS_CA, _CERT and _KEY: the service would not start", s)
	}
}

// secretKeys is what a Secret name is known to hold: rendered, or listed
// for the operator to create.
func (c *checker) secretKeys(ns, name string) (map[string]bool, bool) {
	for _, sec := range c.r.secrets {
		if sec.Name == name && sec.Namespace == ns {
			k := map[string]bool{}
			for n := range sec.Data {
				k[n] = true
			}
			for n := range sec.StringData {
				k[n] = true
			}
			return k, true
		}
	}
	cm := c.r.configMaps[operatorSecrets]
	if cm == nil || cm.Namespace != ns {
		return nil, false
	}
	list, ok := cm.Data[name]
	if !ok {
		return nil, false
	}
	k := map[string]bool{}
	for _, n := range strings.Fields(list) {
		k[n] = true
	}
	return k, true
}

func (c *checker) secretRef(s, what, name, key string, ns string) {
	keys, ok := c.secretKeys(ns, name)
	switch {
	case !ok:
		c.errorf("%s: %s Secret %q is neither rendered nor listed in ConfigMap %s", s, what, name, operatorSecrets)
	case key != "" && !keys[key]:
		c.errorf("%s: %s Secret %q has no key %q (it has %s)", s, what, name, key, strings.Join(keysOf(keys), ", "))
	}
}

// secrets checks every Secret the pod names exists with the keys it uses,
// readable by the user the pod runs as.
func (c *checker) secrets(s string, d *appsv1.Deployment) {
	ns, pod := d.Namespace, &d.Spec.Template.Spec
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			c.secretRef(s, "volume "+v.Name, v.Secret.SecretName, "", ns)
			for _, it := range v.Secret.Items {
				c.secretRef(s, "volume "+v.Name, v.Secret.SecretName, it.Key, ns)
			}
			c.readable(s, v.Name, v.Secret.DefaultMode, pod)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					c.secretRef(s, "volume "+v.Name, src.Secret.Name, "", ns)
					for _, it := range src.Secret.Items {
						c.secretRef(s, "volume "+v.Name, src.Secret.Name, it.Key, ns)
					}
				}
			}
			c.readable(s, v.Name, v.Projected.DefaultMode, pod)
		}
	}
	for _, ct := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		for _, e := range ct.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				c.secretRef(s, "env "+e.Name, e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key, ns)
			}
		}
		for _, ef := range ct.EnvFrom {
			if ef.SecretRef != nil {
				c.secretRef(s, "envFrom", ef.SecretRef.Name, "", ns)
			}
		}
	}
}

// readable: a Secret file the service's user can read (0644 is the
// default; a tighter mode needs the group bits and fsGroup).
func (c *checker) readable(s, vol string, mode *int32, pod *corev1.PodSpec) {
	m := int32(0o644)
	if mode != nil {
		m = *mode
	}
	uid := int64(0)
	if pod.SecurityContext != nil && pod.SecurityContext.RunAsUser != nil {
		uid = *pod.SecurityContext.RunAsUser
	}
	group := pod.SecurityContext != nil && pod.SecurityContext.FSGroup != nil
	if uid != 0 && m&0o004 == 0 && !(group && m&0o040 != 0) {
		c.errorf("%s: volume %s mode %#o is not readable by user %d (no fsGroup with group read)", s, vol, m, uid)
	}
}

// files checks every CUTOVER_* variable naming a file points into a mounted
// volume, and into a Secret at a key it holds.
func (c *checker) files(s string, d *appsv1.Deployment, ct *corev1.Container) {
	vols := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v
	}
	for _, e := range ct.Env {
		if !strings.HasPrefix(e.Name, "CUTOVER_") || !strings.HasPrefix(e.Value, "/") || strings.Contains(e.Value, ":") {
			continue
		}
		var mount *corev1.VolumeMount
		for i, m := range ct.VolumeMounts {
			if strings.HasPrefix(e.Value, strings.TrimSuffix(m.MountPath, "/")+"/") && (mount == nil || len(m.MountPath) > len(mount.MountPath)) {
				mount = &ct.VolumeMounts[i]
			}
		}
		if mount == nil {
			c.errorf("%s: env %s=%s is on no mounted volume", s, e.Name, e.Value)
			continue
		}
		v, ok := vols[mount.Name]
		if !ok {
			c.errorf("%s: volumeMount %s names no volume", s, mount.Name)
			continue
		}
		if v.Secret == nil {
			continue
		}
		rel := strings.TrimPrefix(e.Value, strings.TrimSuffix(mount.MountPath, "/")+"/")
		key := rel
		if len(v.Secret.Items) > 0 {
			key = ""
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			if key == "" {
				c.errorf("%s: env %s=%s: volume %s projects no item at %s", s, e.Name, e.Value, v.Name, rel)
				continue
			}
		}
		c.secretRef(s, "env "+e.Name+"="+e.Value+" (volume "+v.Name+")", v.Secret.SecretName, key, d.Namespace)
	}
}

// dials checks each peer address the binary reads (CUTOVER_<PEER>_ADDR):
// dns:/// so the gRPC client round-robins over every pod, a host that is a
// headless Service selecting that peer's pods and that the peer's
// certificate names, and the port the peer listens on.
func (c *checker) dials(s string, env map[string]corev1.EnvVar) {
	for _, peer := range serviceNames {
		name := addrEnv(peer)
		if peer == s || !c.f.env[s][name] {
			continue
		}
		e, ok := env[name]
		if !ok {
			c.errorf("%s: %s not set: the binary would dial its loopback default for the %s", s, name, peer)
			continue
		}
		target, isDNS := strings.CutPrefix(e.Value, "dns:///")
		if !isDNS {
			c.errorf("%s: %s=%q: without dns:/// the client does not resolve every %s pod", s, name, e.Value, peer)
		}
		host, p, err := net.SplitHostPort(target)
		n, perr := strconv.Atoi(p)
		if err != nil || perr != nil {
			c.errorf("%s: %s=%q is not [dns:///]host:port", s, name, e.Value)
			continue
		}
		if cert := c.f.certs[peer]; cert.VerifyHostname(host) != nil {
			c.errorf("%s: %s=%q: the %s's certificate does not name %q (it names %s): TLS would fail", s, name, e.Value, peer, host, strings.Join(cert.DNSNames, ", "))
		}
		svc := c.r.services[strings.Split(host, ".")[0]]
		pd := c.r.deployments[peer]
		switch {
		case svc == nil:
			c.errorf("%s: %s=%q: no Service %q", s, name, e.Value, host)
		case pd == nil:
		case !selectorMatches(svc.Spec.Selector, pd.Spec.Template.Labels):
			c.errorf("%s: %s=%q: Service %s does not select the %s pods", s, name, e.Value, svc.Name, peer)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			c.errorf("%s: %s=%q: Service %s is not headless: DNS gives one virtual IP and each connection sticks to one %s pod", s, name, e.Value, svc.Name, peer)
		}
		if pd != nil {
			if want, ok := c.listenOf(peer); ok && int32(n) != want {
				c.errorf("%s: %s=%q: the %s listens on %d", s, name, e.Value, peer, want)
			}
		}
	}
}

// listenOf is the port a rendered service listens on.
func (c *checker) listenOf(s string) (int32, bool) {
	d := c.r.deployments[s]
	if d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
		return 0, false
	}
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if e.Name == addrEnv(s) {
			if _, p, err := net.SplitHostPort(e.Value); err == nil {
				n, err := strconv.Atoi(p)
				return int32(n), err == nil
			}
		}
	}
	return 0, false
}

// serviceObject checks the Service named like the service selects its pods
// and carries its port and the metrics port.
func (c *checker) serviceObject(s string, d *appsv1.Deployment, ct *corev1.Container, own serving) {
	svc := c.r.services[s]
	if svc == nil {
		c.errorf("%s: no Service %s", s, s)
		return
	}
	if !selectorMatches(svc.Spec.Selector, d.Spec.Template.Labels) {
		c.errorf("%s: Service %s does not select the %s pods", s, s, s)
	}
	var hasOwn, hasMetrics bool
	for _, p := range svc.Spec.Ports {
		tp := p.TargetPort
		if tp.Type == intstr.Int && tp.IntVal == 0 {
			tp = intstr.FromInt32(p.Port)
		}
		n, ok := resolvePort(ct, tp)
		if !ok {
			c.errorf("%s: Service port %s targets %s, no port of the container", s, p.Name, tp.String())
			continue
		}
		if svc.Spec.ClusterIP == corev1.ClusterIPNone && p.Port != n {
			c.errorf("%s: headless Service port %s is %d but targets %d: clients dial the pod, on %d", s, p.Name, p.Port, n, p.Port)
		}
		hasOwn = hasOwn || n == own.port
		if mp := containerPortByName(ct, "metrics"); mp != nil && p.Name == "metrics" && n == mp.ContainerPort {
			hasMetrics = true
		}
	}
	if !hasOwn {
		c.errorf("%s: Service %s has no port to %d", s, s, own.port)
	}
	if !hasMetrics {
		c.errorf("%s: Service %s has no port named metrics to the metrics port", s, s)
	}
}

// pdb checks a PodDisruptionBudget covers the pods and lets a drain evict
// one of them.
func (c *checker) pdb(s string, d *appsv1.Deployment) {
	replicas := int32(1)
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	n := 0
	for _, p := range c.r.pdbs {
		if p.Namespace != d.Namespace || !selects(p.Spec.Selector, d.Spec.Template.Labels) {
			continue
		}
		n++
		switch {
		case p.Spec.MaxUnavailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MaxUnavailable, int(replicas), true); err != nil || v < 1 {
				c.errorf("%s: PodDisruptionBudget %s maxUnavailable %s lets no pod go", s, p.Name, p.Spec.MaxUnavailable.String())
			}
		case p.Spec.MinAvailable != nil:
			if v, err := intstr.GetScaledValueFromIntOrPercent(p.Spec.MinAvailable, int(replicas), true); err != nil || int32(v) >= replicas {
				c.errorf("%s: PodDisruptionBudget %s minAvailable %s of %d replicas blocks every drain", s, p.Name, p.Spec.MinAvailable.String(), replicas)
			}
		default:
			c.errorf("%s: PodDisruptionBudget %s sets neither minAvailable nor maxUnavailable", s, p.Name)
		}
	}
	if n != 1 {
		c.errorf("%s: %d PodDisruptionBudgets select its pods, want 1", s, n)
	}
}

// reach is who an ingress policy lets reach a port.
type reach struct {
	anyone bool            // a rule with no from, or an ipBlock
	others []string        // peers in other namespaces (namespaceSelector)
	pods   map[string]bool // services of this namespace, by their pods' labels
}

// reachable evaluates the NetworkPolicies that select the service's pods
// for one container port.
func (c *checker) reachable(d *appsv1.Deployment, ct *corev1.Container, port int32) (reach, bool) {
	r := reach{pods: map[string]bool{}}
	isolated := false
	for _, np := range c.r.netpols {
		if np.Namespace != d.Namespace || !selects(&np.Spec.PodSelector, d.Spec.Template.Labels) || !hasIngress(np) {
			continue
		}
		isolated = true
		for _, rule := range np.Spec.Ingress {
			if !coversPort(rule.Ports, ct, port) {
				continue
			}
			if len(rule.From) == 0 {
				r.anyone = true
			}
			for _, peer := range rule.From {
				switch {
				case peer.IPBlock != nil:
					r.anyone = true
				case peer.NamespaceSelector != nil:
					r.others = append(r.others, metav1.FormatLabelSelector(peer.NamespaceSelector))
				case peer.PodSelector != nil:
					for name, other := range c.r.deployments {
						if other.Namespace == d.Namespace && selects(peer.PodSelector, other.Spec.Template.Labels) {
							r.pods[name] = true
						}
					}
				}
			}
		}
	}
	return r, isolated
}

// networkPolicy checks the service's own port admits exactly its callers
// (from the code: auth policy and address variables) and the metrics port
// admits the scraper.
func (c *checker) networkPolicy(s string, d *appsv1.Deployment, ct *corev1.Container, own serving) {
	r, isolated := c.reachable(d, ct, own.port)
	if !isolated {
		c.errorf("%s: no NetworkPolicy isolates its pods: anyone reaches every port", s)
		return
	}
	if public[s] {
		if !r.anyone {
			c.errorf("%s: the front door's port %d is not open to clients", s, own.port)
		}
	} else {
		if r.anyone || len(r.others) > 0 {
			c.errorf("%s: port %d is open beyond its callers (anyone: %v, namespaces: %v)", s, own.port, r.anyone, r.others)
		}
		want := c.f.callers[s]
		for _, w := range want {
			if !r.pods[w] {
				c.errorf("%s: NetworkPolicy keeps out the %s, which calls it", s, w)
			}
		}
		for got := range r.pods {
			if !contains(want, got) {
				c.errorf("%s: NetworkPolicy lets in the %s, which never calls it (callers: %s)", s, got, strings.Join(want, ", "))
			}
		}
	}
	if mp := containerPortByName(ct, "metrics"); mp != nil {
		if m, _ := c.reachable(d, ct, mp.ContainerPort); !m.anyone && len(m.others) == 0 {
			c.errorf("%s: metrics port %d admits no scraper", s, mp.ContainerPort)
		}
	}
}

// writableTmp: with a read-only root, /tmp must be a volume (the default
// trace file is /tmp/cutover/traces.jsonl, kit/telemetry; CSV scratch files).
func (c *checker) writableTmp(s string, d *appsv1.Deployment, ct *corev1.Container) {
	if ct.SecurityContext == nil || ct.SecurityContext.ReadOnlyRootFilesystem == nil || !*ct.SecurityContext.ReadOnlyRootFilesystem {
		return
	}
	for _, m := range ct.VolumeMounts {
		if m.MountPath == "/tmp" && !m.ReadOnly {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.EmptyDir != nil {
					return
				}
			}
		}
	}
	c.errorf("%s: read-only root filesystem and no writable emptyDir at /tmp", s)
}

// monitors checks a ServiceMonitor scrapes every service's metrics port.
func (c *checker) monitors() {
	if len(c.r.monitors) == 0 {
		c.errorf("no ServiceMonitor")
		return
	}
	for _, s := range serviceNames {
		svc, d := c.r.services[s], c.r.deployments[s]
		if svc == nil || d == nil || len(d.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		ct := &d.Spec.Template.Spec.Containers[0]
		scraped := false
		for _, m := range c.r.monitors {
			if m.Namespace != svc.Namespace || !selects(&m.Spec.Selector, svc.Labels) {
				continue
			}
			for _, ep := range m.Spec.Endpoints {
				for _, p := range svc.Spec.Ports {
					if p.Name != ep.Port {
						continue
					}
					n, ok := resolvePort(ct, p.TargetPort)
					mp := containerPortByName(ct, "metrics")
					switch {
					case !ok || mp == nil || n != mp.ContainerPort:
						c.errorf("%s: ServiceMonitor %s scrapes port %s, which is not the metrics port", s, m.Name, ep.Port)
					case ep.Path != "/metrics" || (ep.Scheme != "" && ep.Scheme != "http"):
						c.errorf("%s: ServiceMonitor %s scrapes %s%s; metrics are plain HTTP at /metrics", s, m.Name, ep.Scheme, ep.Path)
					default:
						scraped = true
					}
				}
			}
		}
		if !scraped {
			c.errorf("%s: no ServiceMonitor scrapes its metrics", s)
		}
	}
}

// helpers

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel) // {} selects everything
	return err == nil && s.Matches(labels.Set(l))
}

func selectorMatches(sel map[string]string, l map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(l))
}

func hasIngress(np *networkingv1.NetworkPolicy) bool {
	if len(np.Spec.PolicyTypes) == 0 {
		return true
	}
	for _, t := range np.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

func coversPort(ports []networkingv1.NetworkPolicyPort, ct *corev1.Container, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		n, ok := resolvePort(ct, *p.Port)
		if !ok {
			continue
		}
		if n == port || (p.EndPort != nil && n <= port && port <= *p.EndPort) {
			return true
		}
	}
	return false
}

func resolvePort(ct *corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		return p.IntVal, p.IntVal > 0
	}
	if cp := containerPortByName(ct, p.StrVal); cp != nil {
		return cp.ContainerPort, true
	}
	return 0, false
}

func containerPortByName(ct *corev1.Container, name string) *corev1.ContainerPort {
	for i := range ct.Ports {
		if ct.Ports[i].Name == name {
			return &ct.Ports[i]
		}
	}
	return nil
}

func containerPortByNumber(ct *corev1.Container, n int32) *corev1.ContainerPort {
	for i := range ct.Ports {
		if ct.Ports[i].ContainerPort == n {
			return &ct.Ports[i]
		}
	}
	return nil
}

func portsString(ct *corev1.Container) string {
	var s []string
	for _, p := range ct.Ports {
		s = append(s, fmt.Sprintf("%s=%d", p.Name, p.ContainerPort))
	}
	return strings.Join(s, ", ")
}

// imageName is an image reference's last path element, without tag or digest.
func imageName(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	base := path.Base(ref)
	name, _, _ := strings.Cut(base, ":")
	return name
}

func refName(ef corev1.EnvFromSource) string {
	switch {
	case ef.SecretRef != nil:
		return "Secret " + ef.SecretRef.Name
	case ef.ConfigMapRef != nil:
		return "ConfigMap " + ef.ConfigMapRef.Name
	}
	return "?"
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
