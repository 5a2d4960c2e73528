"""What ``down`` removes of kube-router's: its chains and the hooks into the built-in ones, nothing else."""

from __future__ import annotations

from coffee_rt.cluster.network import kube_router_plan

# `iptables -S` of a filter table with kube-router's firewall, kube-proxy and the kubelet running.
RULES = """\
-P INPUT ACCEPT
-P FORWARD ACCEPT
-P OUTPUT ACCEPT
-N KUBE-FIREWALL
-N KUBE-FORWARD
-N KUBE-NWPLCY-DEFAULT
-N KUBE-NWPLCY-6Q6MKHEBL3A6UQ6U
-N KUBE-POD-FW-QA7HCQGMPGVX2QO5
-N KUBE-ROUTER-FORWARD
-N KUBE-ROUTER-INPUT
-N KUBE-ROUTER-OUTPUT
-A INPUT -m comment --comment "kube-router netpol - 4IA2OSFRMVNDXBVV" -j KUBE-ROUTER-INPUT
-A INPUT -j KUBE-FIREWALL
-A FORWARD -m comment --comment "kube-router netpol - TEMCG2JMHZYE7H7T" -j KUBE-ROUTER-FORWARD
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A OUTPUT -m comment --comment "kube-router netpol - VEAAIY32XVBHCSCY" -j KUBE-ROUTER-OUTPUT
-A KUBE-NWPLCY-DEFAULT -m comment --comment "mark matched" -j MARK --set-xmark 0x10000/0x10000
-A KUBE-POD-FW-QA7HCQGMPGVX2QO5 -j KUBE-NWPLCY-DEFAULT
-A KUBE-ROUTER-FORWARD -d 172.31.1.5/32 -m comment --comment "to POD server" -j KUBE-POD-FW-QA7HCQGMPGVX2QO5
""".splitlines()


def test_plan_unhooks_only_kube_routers_jumps_from_built_in_chains() -> None:
    hooks, chains = kube_router_plan(RULES)
    assert hooks == [
        ["INPUT", "-m", "comment", "--comment", "kube-router netpol - 4IA2OSFRMVNDXBVV", "-j", "KUBE-ROUTER-INPUT"],
        ["FORWARD", "-m", "comment", "--comment", "kube-router netpol - TEMCG2JMHZYE7H7T", "-j", "KUBE-ROUTER-FORWARD"],
        ["OUTPUT", "-m", "comment", "--comment", "kube-router netpol - VEAAIY32XVBHCSCY", "-j", "KUBE-ROUTER-OUTPUT"],
    ]
    assert chains == ["KUBE-NWPLCY-DEFAULT", "KUBE-NWPLCY-6Q6MKHEBL3A6UQ6U", "KUBE-POD-FW-QA7HCQGMPGVX2QO5",
                      "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-INPUT", "KUBE-ROUTER-OUTPUT"]


def test_plan_of_a_table_without_kube_router_is_empty() -> None:
    others = [rule for rule in RULES if "kube-router" not in rule and "NWPLCY" not in rule and "POD-FW" not in rule
              and "ROUTER" not in rule]
    assert kube_router_plan(others) == ([], [])
