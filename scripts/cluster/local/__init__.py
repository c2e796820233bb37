"""A local Kubernetes control plane with simulated nodes, for machines without a container engine.

Real: etcd, kube-apiserver (admission: Pod Security, CRD schemas and CEL, server-side apply),
kube-controller-manager (garbage collection, PV binding, token Secrets), kube-scheduler, and the
KubeRay operator as a host process with the RBAC it ships. Simulated: the nodes and everything a
kubelet would do. kwok marks scheduled pods Running and Ready without running a container: no
image is pulled, no command, probe or Ray process runs, no traffic flows between pods.

Every process listens on 127.0.0.1 and simulated node and pod IPs are in 127.0.0.0/8: no Ray
runs behind a simulated pod. The real node (cluster/node/) adds a kubelet, containerd and runc
in a network namespace, where the operator and every Ray pod run as containers.

    python -m cluster.local up [--state-dir DIR]    # start; kubeconfig in DIR/kubeconfig
    python -m cluster.local down [--state-dir DIR]  # stop every process, remove the state
"""
