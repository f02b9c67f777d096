# Stand-in for python:3.11-slim-bookworm, for hosts that cannot pull from a registry
# (scripts/compose-test.sh): Debian bookworm's own Python 3.11 and pip on a base made by
# debootstrap, with /usr/bin/python and system-wide pip installs as in the official image.
# Real deployments use the official image; only the Dockerfiles' PYTHON_IMAGE changes.
ARG DEBIAN_IMAGE=prodseg-standin/debian:bookworm
FROM ${DEBIAN_IMAGE}

ENV LANG=C.UTF-8
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-pip python-is-python3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && rm -f /usr/lib/python3.*/EXTERNALLY-MANAGED \
 && python --version
CMD ["python3"]
