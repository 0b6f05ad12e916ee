"""The local broker's layout: node addresses, directories, the shape a data directory holds,
each node's server.properties, and the replication the topics get."""

from __future__ import annotations

import pytest

from common.config import ConfigError, Settings
from common.errors import CliError
from streams import broker_nodes
from streams.topics import replication_for

pytestmark = pytest.mark.unit


def _settings(tmp_path, **changes) -> Settings:
    return Settings.from_env({}, kafka_dir=str(tmp_path / "kafka"), **changes)


def test_one_node_keeps_the_layout_it_always_had(tmp_path):
    (node,) = broker_nodes.plan(_settings(tmp_path, bootstrap="127.0.0.1:9092"))
    assert (node.node_id, node.address, node.controller_port) == (1, "127.0.0.1:9092", 9093)
    assert node.paths.root == (tmp_path / "kafka").resolve()
    assert node.paths.libs == node.paths.root / "libs"


def test_three_nodes_take_two_ports_each_from_the_first_address_and_keep_apart(tmp_path):
    nodes = broker_nodes.plan(_settings(tmp_path, bootstrap="127.0.0.1:19092", kafka_nodes=3))
    assert [(n.node_id, n.port, n.controller_port) for n in nodes] == [
        (1, 19092, 19093), (2, 19094, 19095), (3, 19096, 19097)]
    root = (tmp_path / "kafka").resolve()
    assert [n.paths.root for n in nodes] == [root / "node-1", root / "node-2", root / "node-3"]
    assert {n.paths.libs for n in nodes} == {root / "libs"}  # jars resolved once, shared
    assert broker_nodes.bootstrap_of(nodes) == "127.0.0.1:19092,127.0.0.1:19094,127.0.0.1:19096"


def test_a_bootstrap_list_with_one_address_per_node_is_used_as_given(tmp_path):
    listed = "127.0.0.1:29000,127.0.0.1:29010,127.0.0.1:29020"
    nodes = broker_nodes.plan(_settings(tmp_path, bootstrap=listed, kafka_nodes=3))
    assert [n.port for n in nodes] == [29000, 29010, 29020]


@pytest.mark.parametrize("bootstrap", ["127.0.0.1:29000,127.0.0.1:29001,127.0.0.1:29010",
                                       "127.0.0.1:65534", "no-port", "127.0.0.1:http"])
def test_addresses_that_collide_or_do_not_parse_are_one_line_errors(tmp_path, bootstrap):
    with pytest.raises(CliError) as raised:
        broker_nodes.plan(_settings(tmp_path, bootstrap=bootstrap, kafka_nodes=3))
    assert raised.value.exit_code == 2 and "\n" not in str(raised.value)


def test_a_data_directory_is_started_only_in_the_shape_it_holds(tmp_path):
    three = _settings(tmp_path, bootstrap="127.0.0.1:19092", kafka_nodes=3)
    nodes = broker_nodes.plan(three)
    (tmp_path / "kafka").mkdir()
    broker_nodes.record((tmp_path / "kafka").resolve(), nodes, "cluster-id")
    assert broker_nodes.plan(three) == nodes
    # stop and status find every node whatever CALLSTREAM_KAFKA_NODES says
    assert broker_nodes.present(_settings(tmp_path)) == nodes
    with pytest.raises(CliError, match="holds a 3-node cluster: start it with --nodes 3"):
        broker_nodes.plan(_settings(tmp_path))
    with pytest.raises(CliError, match="holds a 3-node cluster, not 5"):
        broker_nodes.plan(_settings(tmp_path, kafka_nodes=5))
    single = tmp_path / "single"
    (single / "data").mkdir(parents=True)
    (single / "data" / "meta.properties").write_text("node.id=1\n")
    with pytest.raises(CliError, match="holds a single-node broker"):
        broker_nodes.plan(Settings.from_env({}, kafka_dir=str(single), kafka_nodes=3))


def test_each_node_config_names_the_whole_quorum_and_replicates_internal_topics(tmp_path):
    nodes = broker_nodes.plan(_settings(tmp_path, bootstrap="127.0.0.1:19092", kafka_nodes=3))
    node = nodes[1]
    node.paths.root.mkdir(parents=True)
    broker_nodes.render_config(node, nodes, 3, 2)
    config = dict(line.split("=", 1) for line in node.paths.config.read_text().splitlines()
                  if line and not line.startswith("#"))
    assert config["node.id"] == "2"
    assert config["controller.quorum.voters"] == "1@127.0.0.1:19093,2@127.0.0.1:19095,3@127.0.0.1:19097"
    assert config["listeners"] == "PLAINTEXT://127.0.0.1:19094,CONTROLLER://127.0.0.1:19095"
    assert config["log.dirs"] == str(node.paths.data)
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "share.coordinator.state.topic.replication.factor", "default.replication.factor"):
        assert config[key] == "3", key
    for key in ("transaction.state.log.min.isr", "share.coordinator.state.topic.min.isr",
                "min.insync.replicas"):
        assert config[key] == "2", key
    assert config["unclean.leader.election.enable"] == "false"


def test_replication_follows_the_cluster_and_min_isr_the_replication():
    auto = Settings.from_env({})
    assert replication_for(auto, 1) == (1, 1)
    assert replication_for(auto, 2) == (2, 1)
    assert replication_for(auto, 3) == (3, 2)
    assert replication_for(auto, 5) == (3, 2)  # auto stops at three copies
    assert replication_for(Settings.from_env({"CALLSTREAM_REPLICATION": "5"}), 5) == (5, 2)
    assert replication_for(Settings.from_env({"CALLSTREAM_REPLICATION": "auto"}), 3) == (3, 2)
    with pytest.raises(CliError, match="CALLSTREAM_REPLICATION is 3 but the cluster .* has 1 broker"):
        replication_for(Settings.from_env({"CALLSTREAM_REPLICATION": "3"}), 1)
    with pytest.raises(ConfigError, match="CALLSTREAM_REPLICATION='0'"):
        Settings.from_env({"CALLSTREAM_REPLICATION": "0"})
    with pytest.raises(ConfigError, match="CALLSTREAM_KAFKA_NODES='2': must be 1, 3 or 5"):
        Settings.from_env({"CALLSTREAM_KAFKA_NODES": "2"})


@pytest.mark.parametrize("nodes", ["2", "4", "three", "0"])
def test_a_node_count_the_quorum_cannot_use_is_a_one_line_usage_error(nodes, tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "callstream.cli", "broker", "start", "--nodes", nodes,
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("callstream broker: error: argument --nodes:"), done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written
