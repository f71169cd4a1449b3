# shellcheck shell=bash disable=SC2034  # its variables are for scripts/testenv, which sources it
# The test environment's node, sourced by scripts/testenv: kube-controller-manager,
# kube-scheduler, kube-proxy and a kubelet over containerd + runc, so that Deployments become
# ReplicaSets and running pods, CronJobs become Jobs, owner references are garbage collected and
# Service ClusterIPs route. Root only: it makes network namespaces, mounts and iptables rules.
#
# Network: a bridge (herald0, $HOST_IP/24) on this machine. Pods get addresses behind it from
# the CNI bridge plugin; the host's servers (PostgreSQL, Redis, Kafka, kube-apiserver) listen on
# $HOST_IP as well as 127.0.0.1. Forwarding from the bridge to any other interface is dropped,
# so no pod traffic leaves the machine. Pods get no DNS server: they are given addresses.

NODE_NAME=herald-node
NODE_BRIDGE=herald0
HOST_IP=${HERALD_NODE_HOST_IP:-10.244.0.1}
POD_SUBNET=${HOST_IP%.*}.0/24
SERVICE_RANGE=10.0.0.0/16
# The `kubernetes` Service: the first address of the range.
KUBERNETES_SERVICE_IP=10.0.0.1
KUBELET_PORT=${HERALD_KUBELET_PORT:-10250}
KAFKA_POD_PORT=${HERALD_KAFKA_POD_PORT:-19094}
KUBE_PROXY_METRICS_PORT=${HERALD_KUBE_PROXY_METRICS_PORT:-10249}
KUBE_PROXY_HEALTHZ_PORT=${HERALD_KUBE_PROXY_HEALTHZ_PORT:-10256}
CRICTL_VERSION=v1.34.0
NODE_BIN=$CACHE/k8s-node-$K8S_VERSION
PAUSE_IMAGE=herald.local/pause:$K8S_VERSION
NODE_DIR=$RUN/node

# --- network ---------------------------------------------------------------------------------

# True when the bridge exists with its address: the servers then listen on it too.
node_network() { ip -4 addr show dev "$NODE_BRIDGE" 2>/dev/null | grep -q "inet $HOST_IP/"; }

# Made by `up` for every component (when root), so that servers started before the node can
# still be reached from pods later.
ensure_node_network() {
  [ "$(id -u)" = 0 ] || return 0
  command -v ip >/dev/null || return 0
  node_network && return 0
  ip link add "$NODE_BRIDGE" type bridge 2>/dev/null || true
  ip addr add "$HOST_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
  # ClusterIPs that no rule translates must not leave through the default route.
  ip route replace "$SERVICE_RANGE" dev "$NODE_BRIDGE" src "$HOST_IP"
  # Only the environment that made the network removes it: a private one (an outage test's)
  # shares it and must leave it alone.
  touch "$RUN/node-network"
}

remove_node_network() {
  [ -f "$RUN/node-network" ] || return 0
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  ip route del "$SERVICE_RANGE" 2>/dev/null || true
}

# --- install ---------------------------------------------------------------------------------

install_node_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
  command -v iptables >/dev/null || missing+=(iptables)
  command -v conntrack >/dev/null || missing+=(conntrack)
  command -v buildah >/dev/null || missing+=(buildah)
  command -v ip >/dev/null || missing+=(iproute2)
  # What scripts/test-e2e drives the node with.
  command -v jq >/dev/null || missing+=(jq)
  command -v curl >/dev/null || missing+=(curl)
  [ ${#missing[@]} -eq 0 ] && return 0
  apt_install "${missing[@]}"
  # Debian starts containerd as a service on the default socket; the node runs its own.
  stop_services containerd
}

install_node() {
  [ "$(id -u)" = 0 ] || die "the node needs root (containerd, network namespaces, mounts, iptables)"
  install_node_packages
  if [ ! -x "$NODE_BIN/kubelet" ] || [ ! -x "$NODE_BIN/crictl" ] || [ ! -f "$NODE_BIN/pause.tar" ]; then
    command -v go >/dev/null || die "go is needed to build the kubelet and its companions"
    log "building kubelet, kube-controller-manager, kube-scheduler, kube-proxy $K8S_VERSION and crictl (Go modules; minutes once)"
    rm -rf "$NODE_BIN.partial" && mkdir -p "$NODE_BIN.partial"
    (cd "$ROOT/testenv/k8s" && CGO_ENABLED=0 go build -trimpath -ldflags "$(k8s_ldflags)" -o "$NODE_BIN.partial/" \
      ./cmd/kubelet ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kube-proxy ./cmd/pause)
    GOBIN="$NODE_BIN.partial" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
      "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"
    build_pause_image "$NODE_BIN.partial"
    rm -rf "$NODE_BIN" && mv "$NODE_BIN.partial" "$NODE_BIN"
  fi
}

# The sandbox image every pod starts with, as an archive containerd imports.
build_pause_image() { # DIR (holding the pause binary; the archive goes there)
  local dir=$1 ctr
  ctr=$(buildah --storage-driver vfs from scratch)
  buildah --storage-driver vfs copy "$ctr" "$dir/pause" /pause >/dev/null
  buildah --storage-driver vfs config --entrypoint '["/pause"]' --user 65535:65535 "$ctr"
  buildah --storage-driver vfs commit -q "$ctr" "$PAUSE_IMAGE" >/dev/null
  buildah --storage-driver vfs rm "$ctr" >/dev/null
  buildah --storage-driver vfs push -q "$PAUSE_IMAGE" "oci-archive:$dir/pause.tar:$PAUSE_IMAGE"
}

# --- start -----------------------------------------------------------------------------------

node_kubeconfig() { echo "$RUN/kube/kubeconfig"; }

# kube-proxy exits when its configuration file changes, even to the same content: rewrite
# a file only when `up node` (repeated by every test run) would change it.
write_if_changed() { # FILE < CONTENT
  local new
  new=$(cat)
  [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return 0
  printf '%s\n' "$new" > "$1"
}

write_node_config() {
  local d=$NODE_DIR
  mkdir -p "$d/cni" "$d/pod-logs"
  write_if_changed "$d/containerd.toml" <<EOF
version = 2
root = "$d/containerd/root"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$d/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  enable_selinux = false
  # This machine refuses to lower a process's oom_score_adj (the kubelet asks -998 for
  # sandboxes): keep containers at or above containerd's own instead of failing every pod.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$d/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
EOF
  write_if_changed "$d/cni/10-herald.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "herald",
  "plugins": [
    {
      "type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$d/cni-ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$HOST_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # resolvConf "": pods get no name server (nothing outside this machine to resolve).
  # Eviction thresholds near zero and no image GC: a test run must not be evicted because the
  # machine's disk happens to be fuller than a production node's would be.
  write_if_changed "$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $HOST_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $RUN/kube/pki/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$d/containerd.sock
failSwapOn: false
failCgroupV1: false
resolvConf: ""
clusterDomain: cluster.local
podLogsDir: $d/pod-logs
serializeImagePulls: false
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
maxPods: 40
syncFrequency: 10s
fileCheckFrequency: 5s
EOF
  write_if_changed "$d/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $(node_kubeconfig)}
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_SUBNET
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$HOST_IP/32"]
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
iptables: {localhostNodePorts: false}
# Zero: leave the host's conntrack settings as they are.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

containerd_ready() { "$NODE_BIN/crictl" --runtime-endpoint "unix://$NODE_DIR/containerd.sock" info; }

node_ready() {
  "$K8S_BIN/kubectl" --kubeconfig "$(node_kubeconfig)" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

node_servers_reachable() {
  local p
  for p in "$PG_PORT" "$REDIS_PORT" "$KAFKA_POD_PORT" "$APISERVER_PORT"; do
    (exec 3<>"/dev/tcp/$HOST_IP/$p") 2>/dev/null || { echo "$p"; return 1; }
  done
}

start_node() {
  local d=$NODE_DIR kc port
  kc=$(node_kubeconfig)
  node_network || die "the node's network ($NODE_BRIDGE with $HOST_IP) is missing: run scripts/testenv down, then up"
  port=$(node_servers_reachable) \
    || die "port $port does not answer on $HOST_IP: servers started before the node's network; run scripts/testenv down, then up node"
  mkdir -p "$d"
  sysctl -qw net.ipv4.ip_forward=1
  modprobe br_netfilter 2>/dev/null || true
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
  iptables -C FORWARD -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP 2>/dev/null \
    || iptables -I FORWARD -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP
  write_node_config
  if ! pid_alive "$d/containerd.pid"; then
    spawn "$d/containerd.pid" "$d/containerd.log" containerd --config "$d/containerd.toml"
    wait_for 30 containerd containerd_ready || die_with_log "$d/containerd.log" "containerd did not start"
  fi
  ctr -a "$d/containerd.sock" -n k8s.io images check "name==$PAUSE_IMAGE" | grep -q "$PAUSE_IMAGE" \
    || ctr -a "$d/containerd.sock" -n k8s.io images import "$NODE_BIN/pause.tar" >/dev/null \
    || die "importing the pause image failed"
  pid_alive "$d/controller-manager.pid" \
    || spawn "$d/controller-manager.pid" "$d/controller-manager.log" "$NODE_BIN/kube-controller-manager" \
      --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
      --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
      --root-ca-file "$RUN/kube/pki/ca.crt" --service-account-private-key-file "$RUN/kube/pki/sa.key" \
      --use-service-account-credentials=false --controllers '*,-nodeipam,-cloud-node-lifecycle'
  pid_alive "$d/scheduler.pid" \
    || spawn "$d/scheduler.pid" "$d/scheduler.log" "$NODE_BIN/kube-scheduler" \
      --kubeconfig "$kc" --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" \
      --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false
  pid_alive "$d/kube-proxy.pid" \
    || spawn "$d/kube-proxy.pid" "$d/kube-proxy.log" "$NODE_BIN/kube-proxy" --config "$d/kube-proxy.yaml"
  pid_alive "$d/kubelet.pid" \
    || spawn "$d/kubelet.pid" "$d/kubelet.log" "$NODE_BIN/kubelet" --config "$d/kubelet.yaml" \
      --kubeconfig "$kc" --hostname-override "$NODE_NAME" --node-ip "$HOST_IP" --root-dir "$d/kubelet"
  wait_for 120 "node Ready" node_ready || die_with_log "$d/kubelet.log" "the node did not become Ready"
  wait_for 30 kube-proxy curl -sf "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz" \
    || die_with_log "$d/kube-proxy.log" "kube-proxy is not healthy"
  local part
  for part in controller-manager scheduler; do
    pid_alive "$d/$part.pid" || die_with_log "$d/$part.log" "kube-$part exited"
  done
  # Pods are refused until the service account controller has made the namespace's default.
  wait_for 60 "default service account" "$K8S_BIN/kubectl" --kubeconfig "$kc" get serviceaccount default \
    || die_with_log "$d/controller-manager.log" "no default service account appeared"
}

# Removes every pod (through the runtime, so CNI releases addresses and network namespaces),
# then the processes, mounts and rules the node made.
stop_node() {
  local d=$NODE_DIR
  [ -d "$d" ] || return 0
  stop_pid "$d/kubelet.pid" kubelet
  if pid_alive "$d/containerd.pid"; then
    "$NODE_BIN/crictl" --runtime-endpoint "unix://$d/containerd.sock" rmp --all --force >/dev/null 2>&1 || true
  fi
  # Unregistered, so that the next start waits for a Ready from the new kubelet rather than
  # believing the old one's.
  "$K8S_BIN/kubectl" --kubeconfig "$(node_kubeconfig)" delete node "$NODE_NAME" --ignore-not-found \
    --request-timeout=10s >/dev/null 2>&1 || true
  stop_pid "$d/controller-manager.pid" kube-controller-manager
  stop_pid "$d/scheduler.pid" kube-scheduler
  stop_pid "$d/kube-proxy.pid" kube-proxy
  stop_pid "$d/containerd.pid" containerd
  # A shim outlives containerd by design; ours are the ones pointing at our socket.
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $d/containerd.sock" 2>/dev/null || true
  "$NODE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  remove_kube_chains
  iptables -D FORWARD -i "$NODE_BRIDGE" ! -o "$NODE_BRIDGE" -j DROP 2>/dev/null || true
  # Deepest first, so that nested mounts come off before their parents.
  awk -v d="$d/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
}

# The kubelet's own chains (KUBE-FIREWALL and its canaries), which `kube-proxy --cleanup` leaves.
remove_kube_chains() {
  local table rule chain
  for table in filter nat mangle; do
    iptables -t "$table" -S 2>/dev/null | awk '/^-A [A-Z]+ .*-j KUBE-/ {sub(/^-A/, "-D"); print}' \
      | while read -r rule; do eval "iptables -t $table $rule" 2>/dev/null || true; done
    for chain in $(iptables -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do
      iptables -t "$table" -F "$chain" 2>/dev/null || true
      iptables -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
}

node_status() {
  if pid_alive "$NODE_DIR/kubelet.pid" && pid_alive "$NODE_DIR/containerd.pid" && node_ready; then
    status_line node up "$NODE_NAME $HOST_IP (kubelet $K8S_VERSION, containerd $(containerd --version | awk '{print $3}'), pods on $POD_SUBNET)"
  else
    status_line node down ""; return 1
  fi
}
