#!/usr/bin/env bash
# Like Kafka's connect-distributed.sh: connect-distributed.sh [-daemon] worker.properties
# Start as many workers with one group.id as you like (each its own listeners port);
# they share the connectors' tasks. Stop one with connect-stop.sh.
FJORD_CONNECT_MODE=distributed exec "$(dirname "$0")/connect-start.sh" "$@"
