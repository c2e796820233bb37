"""The real node's private addresses. They exist only inside the node's network namespace (no
route out of it); the control plane names two of them (the API server advertises NODE_IP for the
`kubernetes` Service and its certificate holds KUBERNETES_SERVICE_IP), so they live here, in a
module that imports nothing."""

# The node's own address, on the loopback interface of its namespace (this kernel has no dummy
# links; the kubelet refuses a 127.x node IP). An in-namespace forward there reaches the API server.
NODE_IP = "10.250.255.1"
# The pod network on the node's CNI bridge, and the whole cluster's pod range (kube-proxy).
POD_SUBNET = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
# kube-apiserver's default --service-cluster-ip-range (kwokctl sets none): `kubernetes` is .1.
SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
CLUSTER_DOMAIN = "cluster.local"


# A node of the cluster beyond the first (real-node-2, joined on demand by second_node.py): the
# next address in the node range and the next /24 of CLUSTER_CIDR, so that every node's pods are
# routable from the others (the namespaces are linked by a veth pair, netns.link) and kube-proxy's
# CLUSTER_CIDR still covers them. Number 1 gives the constants above.
def node_ip(number: int) -> str:
    if not 1 <= number <= 254:
        raise ValueError(f"node number {number}: 1..254")
    return f"10.250.255.{number}"


def pod_subnet(number: int) -> str:
    if not 1 <= number <= 256:
        raise ValueError(f"node number {number}: 1..256")
    return f"10.244.{number - 1}.0/24"
