"""Apache Spark for the tests: a local SparkSession that reads Delta tables, downloading nothing.

PySpark comes from PyPI (the ``spark`` extra); Delta Lake's jars
(``warehouse/spark/pom.xml``) are resolved into the Maven local repository by
``make setup`` and copied from there here with Maven *offline* (``-o``), so a
test run never reaches a network: a missing jar is a one-line failure that
says to run ``make setup``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "warehouse" / "spark" / "pom.xml"


def delta_jars(cache: Path) -> list[Path]:
    """Delta's jars copied from the Maven local repository into ``cache`` (kept per pom)."""
    stamp = cache / ".pom-sha256"
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()
    if not (stamp.exists() and stamp.read_text() == digest):
        mvn = shutil.which("mvn")
        assert mvn, "mvn not found: Maven is needed to copy Delta's jars (make setup)"
        shutil.rmtree(cache, ignore_errors=True)
        done = subprocess.run([mvn, "-q", "-B", "-o", "-f", str(POM), "dependency:copy-dependencies",
                               f"-DoutputDirectory={cache}", "-DincludeScope=runtime"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, ("Delta's jars are not in the Maven local repository (run make setup): "
                                      + (done.stdout + done.stderr)[-1500:])
        stamp.write_text(digest)
    jars = sorted(cache.glob("*.jar"))
    assert any(j.name.startswith("delta-spark") for j in jars), jars
    return jars


def spark_session(jars: list[Path], scratch: Path):
    """A small local SparkSession (two cores, UTC, no UI) with Delta Lake on its classpath."""
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master("local[2]").appName("callstream-tests")
            .config("spark.jars", ",".join(str(j) for j in jars))
            .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
            .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
            # Delta replays its log with this many tasks (50 by default): ours is small.
            .config("spark.databricks.delta.snapshotPartitions", "2")
            .config("spark.driver.memory", "1g")
            .config("spark.local.dir", str(scratch))
            .config("spark.sql.warehouse.dir", str(scratch / "spark-warehouse"))
            .getOrCreate())
