#!/usr/bin/env bash
# Back up and restore a database with the tools docs/database.md names, and check nothing changed:
# SQLite with `sqlite3 ... ".backup"`, PostgreSQL with pg_dump / pg_restore (when an admin URL is given).
#
#   examples/backup_restore.sh [POSTGRES_ADMIN_URL]     e.g. postgresql://postgres@127.0.0.1:5432/postgres
#
# Scratch databases only (a temporary folder; PostgreSQL databases okx_example_<pid>_*, dropped at the end).
# Exit 0 when every restored table equals its original, exact prices and UTC times included.
set -euo pipefail
cd "$(dirname "$0")/.."
OKX=${OKX:-.venv/bin/okx-collector}
ADMIN=${1:-}
work=$(mktemp -d)
pg_names=()
cleanup() {
    rm -rf "$work"
    for name in "${pg_names[@]}"; do psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null; done
}
trap cleanup EXIT

# three trades (a price with a trailing zero, eight decimals, ids past 2^53) and a 1m candle
TRADES_SQLITE="INSERT INTO trades VALUES
 ('okx','BTC-USDT',9007199254740993,1795478400123,'63707.30','0.00164251','buy','0',1795478400130),
 ('okx','BTC-USDT',9007199254740994,1795478400456,'63707.4','1.2','sell','1',1795478400460),
 ('okx','ETH-USDT',1159476100,1795478401000,'3254.52','0.00000001','buy','0',NULL);
INSERT INTO candles VALUES ('okx','BTC-USDT','1m',1795478400000,'63707.30','63707.4','63707.30','63707.4',
 '1.20164251','76553.6374385','63707.3','2','0.00164251','1.2',9007199254740993,9007199254740994,
 1795478400123,1795478400456,1,0,'live',0,1795478460000);"
TRADES_PG="INSERT INTO trades VALUES
 ('okx','BTC-USDT',9007199254740993,'2026-11-24 00:00:00.123+00',63707.30,0.00164251,'buy','0','2026-11-24 00:00:00.130+00'),
 ('okx','BTC-USDT',9007199254740994,'2026-11-24 00:00:00.456+00',63707.4,1.2,'sell','1','2026-11-24 00:00:00.460+00'),
 ('okx','ETH-USDT',1159476100,'2026-11-24 00:00:01+00',3254.52,0.00000001,'buy','0',NULL);
INSERT INTO candles VALUES ('okx','BTC-USDT','1m','2026-11-24 00:00+00',63707.30,63707.4,63707.30,63707.4,
 1.20164251,76553.6374385,63707.3,2,0.00164251,1.2,9007199254740993,9007199254740994,
 '2026-11-24 00:00:00.123+00','2026-11-24 00:00:00.456+00',true,false,'live',0,'2026-11-24 00:01+00');"
QUERY="SELECT * FROM trades ORDER BY inst_id, trade_id; SELECT * FROM candles ORDER BY open_time;"

# --- SQLite: online backup of a live file, restore by copying it back ---------------------------------------
DATABASE_URL="sqlite:///$work/marketdata.db" "$OKX" db upgrade >/dev/null
sqlite3 "$work/marketdata.db" "$TRADES_SQLITE"
sqlite3 "$work/marketdata.db" ".backup $work/marketdata-backup.db"
cp "$work/marketdata-backup.db" "$work/restored.db"
sqlite3 "$work/marketdata.db" "$QUERY" >"$work/sqlite-before.txt"
sqlite3 "$work/restored.db" "$QUERY" >"$work/sqlite-after.txt"
diff "$work/sqlite-before.txt" "$work/sqlite-after.txt"
revision=$(DATABASE_URL="sqlite:///$work/restored.db" "$OKX" db current)
echo "sqlite: $(wc -l <"$work/sqlite-after.txt") rows restored identical; $revision"
grep -F '9007199254740993|1795478400123|63707.30|0.00164251|buy' "$work/sqlite-after.txt" >/dev/null

# --- PostgreSQL: pg_dump (custom format) and pg_restore into a new database ---------------------------------
if [ -z "$ADMIN" ]; then
    echo "postgresql: skipped (no admin URL given)"
    exit 0
fi
src="okx_example_$$_live"
dst="okx_example_$$_restored"
pg_names=("$src" "$dst")
psql -q "$ADMIN" -c "CREATE DATABASE $src" -c "CREATE DATABASE $dst"
base=${ADMIN%/*}
DATABASE_URL="$base/$src" "$OKX" db upgrade >/dev/null
psql -q "$base/$src" -c "$TRADES_PG"
pg_dump --format=custom --file="$work/okx.dump" "$base/$src"
pg_restore --no-owner --dbname="$base/$dst" "$work/okx.dump"
psql -qAt "$base/$src" -c "SET TIME ZONE 'UTC'" -c "$QUERY" >"$work/pg-before.txt"
psql -qAt "$base/$dst" -c "SET TIME ZONE 'UTC'" -c "$QUERY" >"$work/pg-after.txt"
diff "$work/pg-before.txt" "$work/pg-after.txt"
revision=$(DATABASE_URL="$base/$dst" "$OKX" db current)
echo "postgresql: $(grep -c . "$work/pg-after.txt") rows restored identical; ${revision//$base/...}"
grep -F '9007199254740993|2026-11-24 00:00:00.123+00|63707.30|0.00164251|buy' "$work/pg-after.txt" >/dev/null
