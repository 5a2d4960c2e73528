"""What every component needs to know: the validated config, the namespace, the shared names.

The sink Secret names are ones the operator's Role may read (operator/manifests/rbac.yaml,
``resourceNames``); a unit test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi_kubernetes as k8s

from infra.config import StackConfig

POSTGRES_SECRET = "coffee-rt-postgres"  # the owner's: dsn, password (and user, database in-cluster)
REDIS_SECRET = "coffee-rt-redis"  # the admin's (Redis's default user): url, password
# One Secret per client role (infra/credentials.py): each Pod mounts only its own.
POSTGRES_ROLES_SECRET = "coffee-rt-postgres-roles"  # key per role: its SCRAM verifier (the migrations Job only)
POSTGRES_JOB_SECRET = "coffee-rt-postgres-job"  # coffee_job; keys: dsn, password, user (the pipeline's sink)
POSTGRES_AUDITOR_SECRET = "coffee-rt-postgres-auditor"  # coffee_auditor; keys: dsn, password, user
POSTGRES_DASHBOARD_SECRET = "coffee-rt-postgres-dashboard"  # coffee_dashboard; keys: dsn, password, user
POSTGRES_MONITOR_SECRET = "coffee-rt-postgres-monitor"  # coffee_monitor; keys: dsn, password, user
REDIS_SERVER_SECRET = "coffee-rt-redis-server"  # key users.conf: the ACL users (in-cluster Redis only)
REDIS_JOB_SECRET = "coffee-rt-redis-job"  # coffee-job; keys: url, password, user (the pipeline's sink)
REDIS_AUDITOR_SECRET = "coffee-rt-redis-auditor"  # coffee-auditor; keys: url, password, user
REDIS_DASHBOARD_SECRET = "coffee-rt-redis-dashboard"  # coffee-dashboard; keys: url, password, user
REDIS_MONITOR_SECRET = "coffee-rt-redis-monitor"  # coffee-monitor; keys: url, password, user, passwords.json
INGEST_AUTH_SECRET = "coffee-rt-ingest-auth"  # key: tokens.json (the ingest token file)
INGEST_TOKENS_KEY = "tokens.json"
DASHBOARD_AUTH_SECRET = "coffee-rt-dashboard-auth"  # keys: tokens-sha256, session-key (when configured)
# On a Pod template: the checksum of the token Secret the Pods mount (a changed Secret rolls them).
AUTH_CHECKSUM_ANNOTATION = "coffee-rt.dev/auth-secret-checksum"
SLACK_SECRET = "coffee-rt-alertmanager-slack"  # key: url
S3_SECRET = "coffee-rt-flink-s3"  # keys: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY

# Service names (stable DNS names; the CoffeePipeline and the docs use them).
KAFKA_SERVICE = "kafka"
KAFKA_HEADLESS = "kafka-headless"
FLINK_JOBMANAGER = "flink-jobmanager"
# The session cluster's Deployments; the operator sets the job's image on them (spec.job.sessionDeployments).
FLINK_DEPLOYMENTS = ("flink-jobmanager", "flink-taskmanager")
POSTGRES_SERVICE = "postgres"
REDIS_SERVICE = "redis"
DASHBOARD_SERVICE = "coffee-dashboard"

# Pod names (app.kubernetes.io/name) the NetworkPolicies select by.
APP_KAFKA = "kafka"
APP_FLINK = "flink"
APP_POSTGRES = "postgres"
APP_REDIS = "redis"
APP_INGEST = "coffee-ingest"  # set by the operator on the ingest Pods (coffee_operator.children)
APP_OPERATOR = "coffee-rt-operator"
APP_DASHBOARD = "coffee-dashboard"
APP_AUDITOR = "coffee-auditor"  # set by the operator on the auditor Pods (coffee_operator.children)
APP_TOPICS = "kafka-topics"
APP_MIGRATE = "postgres-migrate"
APP_KAFKA_EXPORTER = "kafka-exporter"
APP_POSTGRES_EXPORTER = "postgres-exporter"
APP_REDIS_EXPORTER = "redis-exporter"


@dataclass(frozen=True)
class Context:
    cfg: StackConfig
    namespace: k8s.core.v1.Namespace

    @property
    def ns(self) -> str:
        return self.cfg.namespace

    def host(self, service: str) -> str:
        """A Service's in-cluster DNS name (resolvable from any namespace)."""
        return f"{service}.{self.ns}.svc"
