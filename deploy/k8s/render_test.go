package k8s

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// rendered is one overlay's output, every object decoded strictly into its
// API type (an unknown field is an error, not a silently ignored line).
type rendered struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
	netpols     map[string]*networkingv1.NetworkPolicy
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
	namespaces  map[string]*corev1.Namespace
	monitors    map[string]*serviceMonitor
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// manifests use (there is no typed Go package for it here). Decoded
// strictly: a field outside this subset fails the test until it is added
// here with the meaning the operator gives it.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel          string               `json:"jobLabel,omitempty"`
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector *struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector,omitempty"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Scheme        string `json:"scheme,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// render builds the kustomization at dir with the kustomize Go API and
// decodes what comes out.
func render(fsys filesys.FileSystem, dir string) (*rendered, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	r := &rendered{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
		netpols:     map[string]*networkingv1.NetworkPolicy{},
		configMaps:  map[string]*corev1.ConfigMap{},
		secrets:     map[string]*corev1.Secret{},
		namespaces:  map[string]*corev1.Namespace{},
		monitors:    map[string]*serviceMonitor{},
	}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			return nil, err
		}
		if err := r.add(y); err != nil {
			return nil, fmt.Errorf("%s %s: %w", res.GetKind(), res.GetName(), err)
		}
	}
	return r, nil
}

// add decodes one object by its apiVersion and kind; a kind the test does
// not know is an error, so nothing in the output goes unchecked.
func (r *rendered) add(y []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(y, &tm); err != nil {
		return err
	}
	var name string
	strict := func(obj any, meta *metav1.ObjectMeta) error {
		if err := yaml.UnmarshalStrict(y, obj); err != nil {
			return fmt.Errorf("strict decode: %w", err)
		}
		name = meta.Name
		if name == "" {
			return fmt.Errorf("no metadata.name")
		}
		return nil
	}
	var err error
	dup := false
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		o := &appsv1.Deployment{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.deployments[name]
			r.deployments[name] = o
		}
	case "v1 Service":
		o := &corev1.Service{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.services[name]
			r.services[name] = o
		}
	case "policy/v1 PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.pdbs[name]
			r.pdbs[name] = o
		}
	case "networking.k8s.io/v1 NetworkPolicy":
		o := &networkingv1.NetworkPolicy{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.netpols[name]
			r.netpols[name] = o
		}
	case "v1 ConfigMap":
		o := &corev1.ConfigMap{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.configMaps[name]
			r.configMaps[name] = o
		}
	case "v1 Secret":
		o := &corev1.Secret{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.secrets[name]
			r.secrets[name] = o
		}
	case "v1 Namespace":
		o := &corev1.Namespace{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.namespaces[name]
			r.namespaces[name] = o
		}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		o := &serviceMonitor{}
		if err = strict(o, &o.ObjectMeta); err == nil {
			_, dup = r.monitors[name]
			r.monitors[name] = o
		}
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a kind this test decodes (add it to rendered.add)", tm.APIVersion, tm.Kind)
	}
	if err == nil && dup {
		err = fmt.Errorf("two %s objects named %q", tm.Kind, name)
	}
	return err
}

// memFS copies the manifests on disk (this directory) into an in-memory
// file system under root, where a test adds overlays of its own.
func memFS(root string) (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".yaml") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(root, p)
		if err := mem.MkdirAll(filepath.Dir(dst)); err != nil {
			return err
		}
		return mem.WriteFile(dst, b)
	})
	return mem, err
}
