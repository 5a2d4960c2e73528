"""The JDBC driver's password plugin of the job's sinks (jobs/functions PasswordFile), in a real JVM:
it reads the file its connection names as the job's Python side does (coffee_jobconfig.model), and a
bad file fails the connection with its path named, never its content."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from coffee_job import sql
from coffee_rt.local.components.flink import flink_dist
from coffee_rt.local.installers import job_functions_jar, maven_jars, require_java
from coffee_rt.paths import cache_dir

PROBE = """
import java.util.Properties;
import dev.coffeert.job.PasswordFile;
import org.postgresql.plugin.AuthenticationRequestType;

public class Probe {
    public static void main(String[] args) {
        for (String path : args) {
            Properties info = new Properties();
            if (!path.equals("-")) info.setProperty(PasswordFile.PROPERTY, path);
            try {
                char[] password = new PasswordFile(info).getPassword(AuthenticationRequestType.SASL);
                System.out.println("ok [" + new String(password) + "]");
            } catch (Exception e) {
                System.out.println(e.getClass().getSimpleName() + ": " + e.getMessage());
            }
        }
    }
}
"""


def test_the_plugin_reads_the_password_file_and_names_a_bad_one(tmp_path: Path) -> None:
    require_java(17)
    connectors = maven_jars("flink", cache_dir())
    jar = job_functions_jar(cache_dir(), [flink_dist() / "lib", connectors])
    (tmp_path / "Probe.java").write_text(PROBE)
    files = {"plain": b"s3cret", "newline": b"s3cret\n", "crlf": b"s3 cret\r\n", "empty": b"", "blank": b" \n",
             "latin1": b"\xff"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    paths = [*(str(tmp_path / name) for name in files), str(tmp_path / "missing"), str(tmp_path),
             str(tmp_path / "plain" / "x"), "-"]
    out = subprocess.run(["java", "-cp", f"{jar}:{connectors}/*", str(tmp_path / "Probe.java"), *paths],
                         capture_output=True, text=True, check=True, timeout=120)
    bad = "PSQLException: the Postgres password file"
    assert out.stdout.splitlines() == [
        "ok [s3cret]", "ok [s3cret]", "ok [s3 cret]",
        f"{bad} {tmp_path}/empty is empty", f"{bad} {tmp_path}/blank is empty",
        f"{bad} {tmp_path}/latin1 is not UTF-8 text",
        f"{bad} {tmp_path}/missing does not exist",
        f"{bad} {tmp_path} is a directory, not a file",
        f"{bad} {tmp_path}/plain/x cannot be read: Not a directory",
        "PSQLException: the JDBC URL names no passwordFile for dev.coffeert.job.PasswordFile",
    ]


def test_the_sinks_url_names_the_plugin_the_jvm_has() -> None:
    assert sql.PASSWORD_PLUGIN == "dev.coffeert.job.PasswordFile"
    source = Path(__file__).resolve().parents[3] / "jobs/functions/src/dev/coffeert/job/PasswordFile.java"
    assert 'public static final String PROPERTY = "passwordFile";' in source.read_text()


@pytest.mark.parametrize("path", ["/run/secrets/pg password", "/run/secrets/p&w=1"])
def test_a_password_file_path_is_quoted_in_the_url(path: str) -> None:
    from coffee_jobconfig.model import JobConfig

    cfg = JobConfig(kafka_bootstrap="k:9092", postgres_jdbc_url="jdbc:postgresql://db/coffee",
                    postgres_user="coffee", postgres_password_file=path, redis_url_file="/run/secrets/redis-url")
    assert sql.jdbc_url(cfg).endswith("&passwordFile=" + path.replace(" ", "%20").replace("&", "%26")
                                      .replace("=", "%3D"))
