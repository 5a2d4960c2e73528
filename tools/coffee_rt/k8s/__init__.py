"""A real Kubernetes control plane for tests and local work, built from the Go module proxy.

There is no container engine here, so kind/k3d/minikube are out: etcd, kube-apiserver and
kube-controller-manager are compiled from ``k8s.io/kubernetes`` at a pinned release (see
``versions``) into the project cache, and run as plain processes by the local stack's ``k8s``
component.
"""
