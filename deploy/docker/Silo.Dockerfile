# syntax=docker/dockerfile:1
# A silo: hosts thread grains and serves the internal endpoints (/internal/...) to gateways. Build from the
# repository root:
#   docker build -f deploy/docker/Silo.Dockerfile -t conversations-silo .
# Needs Cluster__PostgresConnectionString, Cluster__ClusterKey and Cluster__AdvertisedAddress (see deploy/README.md).

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore layer: only the MSBuild props and the project files, so source edits don't invalidate the package cache.
COPY Directory.Build.props Directory.Packages.props ./
COPY src/Grains.Abstractions/Grains.Abstractions.csproj src/Grains.Abstractions/
COPY src/Grains/Grains.csproj src/Grains/
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
ENV ASPNETCORE_HTTP_PORTS=8080 \
    DOTNET_CLI_TELEMETRY_OPTOUT=1
EXPOSE 8080
# The image's built-in non-root user (uid 1654).
USER $APP_UID
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/internal/health || exit 1
ENTRYPOINT ["dotnet", "Conversations.Silo.dll"]
