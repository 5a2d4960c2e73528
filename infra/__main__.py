"""The Pulumi program (issue #8). Not written yet: `pulumi up` stops here with a clear message."""

raise SystemExit("coffee-rt: the Pulumi program is not implemented yet (see the infra issue)")
