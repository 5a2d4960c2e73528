"""kubectl comes from the dev dependencies and matches the pinned server's minor version."""

from __future__ import annotations

import json
import subprocess

from coffee_rt.k8s.kubectl import kubectl_path
from coffee_rt.k8s.versions import KUBERNETES_VERSION, parse_release


def test_kubectl_client_minor_matches_the_pinned_server() -> None:
    out = subprocess.run([str(kubectl_path()), "version", "--client", "-o", "json"], capture_output=True, text=True,
                         check=True).stdout
    client = json.loads(out)["clientVersion"]
    assert (client["major"], client["minor"]) == ("1", str(parse_release(KUBERNETES_VERSION)[0]))
