"""Policy rules over Kubernetes objects (plain functions, used by the tests and by the PulumiPolicy pack)."""
