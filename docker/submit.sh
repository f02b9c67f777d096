#!/usr/bin/env bash
# Submit a job from the host to the docker compose stack (docker/compose.yaml).
#
#   docker/submit.sh --images captures/milk/ --reference captures/milk/img_001.jpg --ref-point 250,300
#
# Points the `prodseg` CLI at the Redis and S3 ports the stack publishes on 127.0.0.1, with the
# credentials from docker/.env (or the file named by PRODSEG_ENV_FILE), then runs
# `prodseg submit` with your arguments. Needs `prodseg` installed on the host (pip install .);
# the CLI's submit path does not need torch or a GPU.
#
# Sourced instead of run, it only sets up the environment, for the other commands:
#   . docker/submit.sh && prodseg watch JOB && prodseg fetch JOB --output results/JOB
#
# Variables already set in your environment win over docker/.env, as with docker compose.

_prodseg_stack_env() {
    local here env_file line key value missing=""
    local redis_password="" access_key="" secret_key="" bucket="" region=""
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    env_file="${PRODSEG_ENV_FILE:-$here/.env}"
    if [ ! -f "$env_file" ]; then
        echo "submit.sh: $env_file not found; create it with: cp docker/.env.example docker/.env" >&2
        return 2
    fi
    # Read KEY=VALUE lines literally (the file is never executed by the shell).
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line%$'\r'}"
        case "$line" in '' | '#'*) continue ;; esac
        line="${line#export }"
        key="${line%%=*}"
        value="${line#*=}"
        key="${key//[[:space:]]/}"
        case "$value" in
            \"*\") value="${value:1:${#value}-2}" ;;
            \'*\') value="${value:1:${#value}-2}" ;;
        esac
        case "$key" in
            REDIS_PASSWORD) redis_password="$value" ;;
            S3_ACCESS_KEY) access_key="$value" ;;
            S3_SECRET_KEY) secret_key="$value" ;;
            PRODSEG_S3_BUCKET) bucket="$value" ;;
            PRODSEG_S3_REGION) region="$value" ;;
        esac
    done < "$env_file"
    # The caller's environment wins over the file.
    redis_password="${REDIS_PASSWORD:-$redis_password}"
    access_key="${S3_ACCESS_KEY:-$access_key}"
    secret_key="${S3_SECRET_KEY:-$secret_key}"
    bucket="${PRODSEG_S3_BUCKET:-$bucket}"
    region="${PRODSEG_S3_REGION:-$region}"
    [ -n "$redis_password" ] || missing="$missing REDIS_PASSWORD"
    [ -n "$access_key" ] || missing="$missing S3_ACCESS_KEY"
    [ -n "$secret_key" ] || missing="$missing S3_SECRET_KEY"
    if [ -n "$missing" ]; then
        echo "submit.sh: set$missing in $env_file" >&2
        return 2
    fi

    # The ports docker/compose.yaml publishes (127.0.0.1 only).
    export PRODSEG_BROKER_URL="redis://:${redis_password}@127.0.0.1:6379/0"
    export PRODSEG_S3_ENDPOINT_URL="http://127.0.0.1:8333"
    export PRODSEG_S3_BUCKET="${bucket:-prodseg}"
    export PRODSEG_S3_REGION="${region:-us-east-1}"
    export AWS_ACCESS_KEY_ID="$access_key"
    export AWS_SECRET_ACCESS_KEY="$secret_key"
    export AWS_REQUEST_CHECKSUM_CALCULATION=when_required
    export AWS_RESPONSE_CHECKSUM_VALIDATION=when_required
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: set up the environment and return to the caller's shell.
    if _prodseg_stack_env; then unset -f _prodseg_stack_env; return 0; fi
    unset -f _prodseg_stack_env
    return 2
fi

set -euo pipefail
_prodseg_stack_env || exit $?
if ! command -v prodseg > /dev/null 2>&1; then
    echo "submit.sh: the prodseg command is not on PATH (install it: pip install .)" >&2
    exit 2
fi
exec prodseg submit "$@"
