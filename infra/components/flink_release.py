"""The Flink release the cluster runs (jobs/Dockerfile's base image, the job's apache-flink pin) and
the two pieces of that release's default config the cluster's ConfigMap carries.

infra's environment has no PyFlink: these are constants, and tests/unit/job/test_flink_release.py (root
environment, which has the apache-flink wheel) checks them against the installed wheel, jobs/uv.lock
and jobs/Dockerfile. No Pulumi imports here, so that test can read them.
"""

from __future__ import annotations

from pathlib import Path

FLINK_VERSION = "2.2.1"

# env.java.opts.all of the release's conf/config.yaml: the JVM flags Flink needs on Java 17.
JAVA_OPTS_ALL = " ".join([
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.api=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.parser=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.tree=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.util=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED",
])

# The release's conf/log4j-console.properties (the official image's entrypoint logs to the console).
LOG4J_CONSOLE_PROPERTIES = (Path(__file__).with_name("flink-log4j-console.properties")).read_text()
