# Stand-in for amazon/aws-cli:2.32.8, for hosts that cannot pull from a registry
# (scripts/compose-test.sh): the AWS CLI from PyPI (`awscli`, version 1; create-bucket uses
# only `s3api list-buckets`, `head-bucket` and `create-bucket`, the same in both). The pip
# configuration of the build host comes in as a build secret, never into a layer.
ARG PYTHON_IMAGE=prodseg-standin/python:3.11-bookworm
FROM ${PYTHON_IMAGE}

ARG AWSCLI_VERSION=1.46.3
RUN --mount=type=secret,id=pip.conf,target=/etc/pip.conf \
    --mount=type=secret,id=pip-ca.crt \
    pip install --no-cache-dir "awscli==${AWSCLI_VERSION}" \
 && aws --version
ENTRYPOINT ["aws"]
