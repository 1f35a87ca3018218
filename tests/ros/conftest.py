"""Real rclpy fixtures: a fresh context per test and a helper to spin until a condition."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable

import pytest
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor


class Graph:
    """A private rclpy context with a single-threaded executor (as ``run_nodes`` uses); nodes
    added here spin in ``spin_until``."""

    def __init__(self, domain_id: int) -> None:
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.nodes: list = []

    def add(self, node):
        """Spin ``node`` with the others; returns it."""
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def spin_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Spin until ``predicate()`` is true or ``timeout`` seconds pass; returns the predicate."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.02)
        return predicate()

    def spin_for(self, seconds: float) -> None:
        """Spin for a fixed time."""
        self.spin_until(lambda: False, seconds)

    def close(self) -> None:
        """Destroy nodes and shut the context down."""
        for node in self.nodes:
            close = getattr(node, "close", None)
            if close is not None:
                close()
            node.destroy_node()
        self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)


# Each test gets a DDS domain of its own (cycling through 1..100, so a domain comes back only
# ~100 tests later, long after its participants' leases ran out): no participant of an earlier
# test, e.g. a node process it started and stopped, is discovered by a later one. A test's
# subprocesses and in-process sessions inherit it through ROS_DOMAIN_ID.
_DOMAINS = itertools.count(int(os.environ["ROS_DOMAIN_ID"]))


@pytest.fixture
def graph(monkeypatch):
    """An isolated ROS 2 graph (and DDS domain) for one test."""
    domain = 1 + next(_DOMAINS) % 100
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    g = Graph(domain)
    yield g
    g.close()
