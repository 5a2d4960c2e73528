"""A real one-node Kubernetes cluster on this machine (coffee_rt.local.components.cluster) and the
project's images built for it without Docker (coffee_rt.cluster.images)."""
