"""The local control plane's PKI and kubeconfigs: what the API server and clients will check."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from coffee_rt.k8s import kubeconfig
from coffee_rt.k8s.pki import ensure_pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_serving_cert_is_signed_by_the_ca_and_names_loopback_and_the_service(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    ca, serving = _cert(pki.ca_cert), _cert(pki.apiserver_cert)
    serving.verify_directly_issued_by(ca)
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(map(str, sans.get_values_for_type(x509.IPAddress))) == ["10.0.0.1", "127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == [
        "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    usage = serving.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True


@pytest.mark.parametrize(("component", "user", "groups"), [
    ("controller-manager", "system:kube-controller-manager", []),
    ("scheduler", "system:kube-scheduler", []),
    ("kwok", "coffee-rt-kwok", ["system:masters"]),
])
def test_component_client_certs_carry_their_user_and_groups(
    tmp_path: Path, component: str, user: str, groups: list[str]
) -> None:
    pki = ensure_pki(tmp_path / "pki")
    cert = _cert(pki.client_cert(component))
    cert.verify_directly_issued_by(_cert(pki.ca_cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == user
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == groups
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]


def test_token_file_makes_a_masters_admin_and_files_are_private(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    token, user, uid, groups = pki.token_file.read_text().strip().split(",", 3)
    assert (user, uid, groups) == ("coffee-rt-admin", "coffee-rt-admin", '"system:masters"')
    assert len(token) == 48 and pki.admin_token() == token
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in pki.files())
    assert stat.S_IMODE(pki.root.stat().st_mode) == 0o700


def test_a_complete_pki_is_kept_and_an_incomplete_one_remade(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    token, ca = pki.admin_token(), pki.ca_cert.read_bytes()
    assert ensure_pki(tmp_path / "pki").admin_token() == token
    pki.sa_key.unlink()
    remade = ensure_pki(tmp_path / "pki")
    assert remade.complete() and remade.ca_cert.read_bytes() != ca and remade.admin_token() != token


def test_host_address_is_added_to_the_serving_cert(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki", host="127.0.0.2")
    sans = _cert(pki.apiserver_cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.2") in sans.get_values_for_type(x509.IPAddress)


def test_kubeconfig_with_a_token(tmp_path: Path) -> None:
    path = kubeconfig.write(tmp_path / "kc", kubeconfig.render("https://127.0.0.1:6443", Path("/p/ca.crt"), "me",
                                                               token="t0k"))
    config = yaml.safe_load(path.read_text())
    cluster = {"server": "https://127.0.0.1:6443", "certificate-authority": "/p/ca.crt"}
    assert config["clusters"] == [{"name": "coffee-rt-local", "cluster": cluster}]
    assert config["users"] == [{"name": "me", "user": {"token": "t0k"}}]
    assert config["current-context"] == "coffee-rt-local"
    assert config["contexts"][0]["context"] == {"cluster": "coffee-rt-local", "user": "me", "namespace": "default"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_kubeconfig_with_a_client_cert(tmp_path: Path) -> None:
    config = kubeconfig.render("https://h:1", Path("/ca"), "kcm", client_cert=Path("/c.crt"), client_key=Path("/c.key"))
    assert config["users"] == [{"name": "kcm", "user": {"client-certificate": "/c.crt", "client-key": "/c.key"}}]


@pytest.mark.parametrize("kwargs", [
    {},
    {"token": "t", "client_cert": Path("/c"), "client_key": Path("/k")},
    {"client_cert": Path("/c")},
])
def test_kubeconfig_needs_exactly_one_credential(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="either a token or a client certificate"):
        kubeconfig.render("https://h:1", Path("/ca"), "u", **kwargs)  # type: ignore[arg-type]
