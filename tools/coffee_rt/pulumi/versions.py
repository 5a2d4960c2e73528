"""The pinned Pulumi CLI and Kubernetes provider. Change them here, then run ``python -m coffee_rt.pulumi.gomod``.

The Python side must agree (infra/pyproject.toml): the ``pulumi`` SDK at or below the CLI's
version (a newer CLI serves older SDKs), and ``pulumi-kubernetes`` at exactly the provider's
version, because the SDK asks the engine for the ``kubernetes`` plugin of its own version and
nothing here can download a plugin.

The provider's Go module (``provider/v4``) has no tags of its own: the proxy serves commits as
pseudo-versions. ``v4.0.0-20260115033456-f47bc2d6f199`` is the commit tagged ``v4.25.0`` in the
pulumi-kubernetes repository (the release of PyPI's pulumi-kubernetes 4.25.0).
"""

from __future__ import annotations

PULUMI_VERSION = "v3.276.0"
PULUMI_MODULE = "github.com/pulumi/pulumi/pkg/v3"
PULUMI_SDK_MODULE = "github.com/pulumi/pulumi/sdk/v3"
PULUMI_PACKAGE = "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
# pkg/v3's own go.mod replaces clipboard with a fork; replaces do not carry over to a dependent module.
PULUMI_REPLACES = {"github.com/atotto/clipboard": "github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e"}
# Without it `pulumi version` prints an empty line (and plugins see no CLI version).
PULUMI_VERSION_VAR = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"

KUBERNETES_PROVIDER_VERSION = "v4.25.0"
KUBERNETES_PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
KUBERNETES_PROVIDER_MODULE_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"
KUBERNETES_SDK_MODULE = "github.com/pulumi/pulumi-kubernetes/sdk/v4"
KUBERNETES_PROVIDER_PACKAGE = "github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes"
KUBERNETES_PROVIDER_VERSION_VAR = "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version"

# What infra/pyproject.toml pins to match (a unit test reads the lock against these).
PYTHON_PULUMI = "3.272.0"
PYTHON_PULUMI_KUBERNETES = KUBERNETES_PROVIDER_VERSION.removeprefix("v")
