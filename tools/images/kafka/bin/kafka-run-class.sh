#!/bin/sh
# Runs a Kafka class on the image's jars (/opt/kafka/libs), as the distribution's script of this name.
# The broker logs at INFO to stdout (config/log4j2.yaml); the admin tools only their warnings to stderr.
set -eu
log4j=/opt/kafka/config/tools-log4j2.yaml
[ "$1" = kafka.Kafka ] && log4j=/opt/kafka/config/log4j2.yaml
# shellcheck disable=SC2086 # the *_OPTS variables are lists of JVM options
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} ${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC} ${KAFKA_OPTS:-} \
  -Djava.awt.headless=true -Dlog4j2.configurationFile="$log4j" -cp '/opt/kafka/libs/*' "$@"
