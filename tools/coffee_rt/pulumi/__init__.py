"""The Pulumi toolchain (CLI and Kubernetes provider) built from the Go module proxy, and its use."""
