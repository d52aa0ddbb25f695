"""Prepare a MySQL/MariaDB server for the suite: time-zone tables, when it has none.

Why: the suite runs with ``TIME_ZONE = "Asia/Shanghai"`` and ``USE_TZ = True``, which
needs the server's time-zone tables; a fresh server (as CI's) has them empty. Loads
them with the server's own ``mariadb-tzinfo-to-sql`` / ``mysql_tzinfo_to_sql`` from
the system's zoneinfo, once. Run by ``make test-mysql``::

    python tests/prepare_mysql.py mysql://root@127.0.0.1:3306/test
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from urllib.parse import unquote, urlsplit

import MySQLdb

ZONEINFO = "/usr/share/zoneinfo"


def main(url: str) -> int:
    parts = urlsplit(url)
    options = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
    }
    connection = MySQLdb.connect(**options)
    cursor = connection.cursor()
    cursor.execute("SELECT COUNT(*) FROM mysql.time_zone_name")
    if cursor.fetchone()[0]:
        return 0
    tool = shutil.which("mariadb-tzinfo-to-sql") or shutil.which("mysql_tzinfo_to_sql")
    client = shutil.which("mariadb") or shutil.which("mysql")
    if tool is None or client is None:
        print("prepare_mysql: no tzinfo_to_sql tool or client; time-zone tables not loaded")
        return 0
    sql = subprocess.run([tool, ZONEINFO], capture_output=True, check=True).stdout
    command = [client, "-h", options["host"], "-P", str(options["port"]), "-u", options["user"]]
    if options["password"]:
        command.append(f"-p{options['password']}")
    subprocess.run([*command, "mysql"], input=sql, check=True, capture_output=True)
    print("prepare_mysql: time-zone tables loaded")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
