// Package k8s holds no code: it is the module of the test that renders the
// kustomize overlays in this directory and checks them against the service
// binaries (render_test.go).
package k8s
