#!/bin/sh
# The Flink stand-in base image's entrypoint, with the official image's contract: `jobmanager` or
# `taskmanager` runs that process in the foreground (logs on stdout), listening on every address
# of the pod; anything else is run as given.
set -e
case "$1" in
  jobmanager)
    shift
    exec "$FLINK_HOME/bin/jobmanager.sh" start-foreground -D rest.bind-address=0.0.0.0 \
      -D jobmanager.bind-host=0.0.0.0 "$@" ;;
  taskmanager)
    shift
    exec "$FLINK_HOME/bin/taskmanager.sh" start-foreground -D taskmanager.bind-host=0.0.0.0 "$@" ;;
  *)
    exec "$@" ;;
esac
