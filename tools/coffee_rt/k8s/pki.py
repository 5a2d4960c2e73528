"""Certificates, keys and a token for a loopback control plane, generated once per state folder.

One CA signs the API server's serving certificate and the components' client certificates
(controller-manager, scheduler, kwok). A separate key pair signs service-account tokens. The
admin gets a static bearer token: that is what the written kubeconfig uses, like a cloud login.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The first address of the service range is the in-cluster `kubernetes` Service's ClusterIP.
SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
ADMIN_USER = "coffee-rt-admin"
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
# kwok plays every kubelet (node and pod status, leases); there is no narrower built-in role for
# that without the Node authorizer, so this test-only simulator is an admin.
KWOK_USER = "coffee-rt-kwok"
KWOK_GROUPS = ("system:masters",)
_VALIDITY = dt.timedelta(days=3650)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

# Component -> (user, groups) of its client certificate.
CLIENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "controller-manager": (CONTROLLER_MANAGER_USER, ()),
    "scheduler": (SCHEDULER_USER, ()),
    "kwok": (KWOK_USER, KWOK_GROUPS),
}


@dataclass(frozen=True)
class Pki:
    """The files of a control plane's PKI in ``root``."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def apiserver_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def apiserver_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"

    def client_cert(self, component: str) -> Path:
        """A component's client certificate: component is controller-manager, scheduler or kwok."""
        return self.root / f"{component}.crt"

    def client_key(self, component: str) -> Path:
        return self.root / f"{component}.key"

    @property
    def token_file(self) -> Path:
        """kube-apiserver's --token-auth-file: ``token,user,uid,"group1,group2"``."""
        return self.root / "tokens.csv"

    def admin_token(self) -> str:
        return self.token_file.read_text().split(",", 1)[0]

    def files(self) -> list[Path]:
        clients = [f(c) for c in CLIENTS for f in (self.client_cert, self.client_key)]
        return [self.ca_cert, self.ca_key, self.apiserver_cert, self.apiserver_key, self.sa_key, self.sa_pub,
                *clients, self.token_file]

    def complete(self) -> bool:
        return all(p.is_file() for p in self.files())


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str, organizations: Sequence[str] = ()) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    return x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make_ca(common_name: str = "coffee-rt-local-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    common_name: str,
    *,
    organizations: Sequence[str] = (),
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A leaf certificate: a server one (with SANs) or a client one (CN = user, O = groups)."""
    key = _new_key()
    now = dt.datetime.now(dt.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organizations))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=False,
                                     crl_sign=False, content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if dns_names or ip_addresses:
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def ensure_pki(root: Path, host: str = "127.0.0.1") -> Pki:
    """Create the PKI in ``root`` unless it is all there already (keys are never replaced in place)."""
    pki = Pki(root)
    if pki.complete():
        return pki
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)
    ca_cert, ca_key = make_ca()
    serving, serving_key = issue(
        ca_cert, ca_key, "kube-apiserver", server=True,
        dns_names=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                   "kubernetes.default.svc.cluster.local"],
        ip_addresses=sorted({host, "127.0.0.1", KUBERNETES_SERVICE_IP}),
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    _write(pki.ca_cert, ca_cert.public_bytes(pem))
    _write(pki.ca_key, _key_pem(ca_key))
    _write(pki.apiserver_cert, serving.public_bytes(pem))
    _write(pki.apiserver_key, _key_pem(serving_key))
    for component, (user, groups) in CLIENTS.items():
        cert, key = issue(ca_cert, ca_key, user, organizations=groups)
        _write(pki.client_cert(component), cert.public_bytes(pem))
        _write(pki.client_key(component), _key_pem(key))
    _write(pki.sa_key, _key_pem(sa_key))
    _write(pki.sa_pub, sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo))
    # Written last: complete() is true only once everything above is there.
    _write(pki.token_file, f'{secrets.token_hex(24)},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'.encode())
    return pki
