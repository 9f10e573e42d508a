# syntax=docker/dockerfile:1
# One image, many functions: every Lambda is bundled into /var/task/<FunctionName>/index.mjs and each
# DockerImageFunction selects its handler with CMD ("<FunctionName>/index.handler"). Used by `-c packaging=image`.

# Build stage: bundle with the stack's esbuild options (lib/bundling.ts) through the project's build script.
# esbuild's output is plain JavaScript, so this stage runs on the build machine's own platform.
FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY lib/ lib/
COPY lambdas/ lambdas/
COPY scripts/ scripts/
RUN npx tsx scripts/build.ts --outdir /src/dist

# Runtime stage: the AWS Lambda Node.js 22 base image (arm64 when built with --platform linux/arm64, as the
# stack does). Everything is bundled, so no node_modules are installed here: there are no production
# dependencies left to install. It runs as the image's default user.
FROM public.ecr.aws/lambda/nodejs:22
COPY --from=build /src/dist/ ${LAMBDA_TASK_ROOT}/
CMD ["Health/index.handler"]
