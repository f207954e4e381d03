# syntax=docker/dockerfile:1
# A silo (Conversations.Silo.dll): an Orleans silo hosting the thread grains and calling the models, on PostgreSQL
# (membership, grain state, reminders, history). Gateways reach it through Orleans on the gateway port; HTTP serves
# only /health (liveness) and /health/ready (storage) for probes. Build from the repository root:
#   docker build -f deploy/docker/Silo.Dockerfile -t conversations-silo .
# Needs Cluster__PostgresConnectionString and Cluster__AdvertisedAddress (this container's IP address as the other
# silos and the gateways reach it); everything else has a default. See deploy/README.md.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore layer: only the MSBuild props and the project files, so source edits don't invalidate the package cache.
COPY Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Grains.Abstractions/Grains.Abstractions.csproj src/Grains.Abstractions/
COPY src/Grains/Grains.csproj src/Grains/
COPY src/ServiceDefaults/ServiceDefaults.csproj src/ServiceDefaults/
COPY src/Silo/Silo.csproj src/Silo/
RUN dotnet restore src/Silo/Silo.csproj
COPY src/ src/
RUN dotnet publish src/Silo/Silo.csproj -c Release --no-restore -o /app /p:UseAppHost=false

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS runtime
# curl only for the container health check (compose / `docker run --health-*`); Kubernetes probes don't need it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app ./
# Orleans listens on every interface in a container (it still advertises Cluster__AdvertisedAddress). Shutdown gets
# 45 s (runs interrupted and their watchers told, grains deactivated, membership left): give the container more
# before it is killed (compose stop_grace_period, Kubernetes terminationGracePeriodSeconds).
ENV ASPNETCORE_HTTP_PORTS=8080 \
    Cluster__SiloPort=11111 \
    Cluster__GatewayPort=30000 \
    Cluster__ListenOnAnyAddress=true \
    DOTNET_shutdownTimeoutSeconds=45 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
# 8080 HTTP health, 11111 silo-to-silo, 30000 Orleans gateway (clients).
EXPOSE 8080 11111 30000
# The image's built-in non-root user (uid 1654).
USER $APP_UID
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["dotnet", "Conversations.Silo.dll"]
