#!/usr/bin/env bash
# import and export draw a progress bar when stderr is a terminal (here a
# pty, through script(1)), and only then: stdout keeps the bare id, and
# the bar's line is erased at the end.  Without a terminal, stderr holds
# no bar.
. ./functions.sh

"$CAIRN" init 2>/dev/null
head -c $((8 << 20)) /dev/urandom > "$TMP/a.img"
bar_done='\[#{30}\] 100% 8\.0 MiB / 8\.0 MiB'

# on_tty OUT COMMAND: runs COMMAND (a shell line) with its stdin, stdout
# and stderr on a pty; what the pty got goes to OUT.  Fails as COMMAND
# does.
on_tty () {
  script -qec "$2" "$1" > /dev/null
}

if ! script -qec true /dev/null > /dev/null 2>&1; then
  skip "script(1) cannot open a pty here: the bar on a terminal"
else
  on_tty "$TMP/import.tty" "'$CAIRN' import main '$TMP/a.img' > '$TMP/id'"
  ok "import on a terminal succeeded" [ $? -eq 0 ]
  ok "stdout still holds only the commit id" grep -qxE '[0-9a-f]{64}' "$TMP/id"
  ok "the terminal got the import bar, to 100%" \
    grep -qaE "import $bar_done" "$TMP/import.tty"
  ok "redrawn in place (carriage returns) and erased at the end" \
    grep -qaP '\rimport \[.*\r\033\[K' "$TMP/import.tty"

  on_tty "$TMP/export.tty" "'$CAIRN' export main '$TMP/b.img'"
  ok "export on a terminal succeeded" [ $? -eq 0 ]
  ok "the terminal got the export bar, to 100%" \
    grep -qaE "export $bar_done" "$TMP/export.tty"
  ok "and the export is the image" cmp "$TMP/a.img" "$TMP/b.img"
fi

"$CAIRN" import second "$TMP/a.img" > /dev/null 2> "$TMP/import.err"
"$CAIRN" export second "$TMP/c.img" 2> "$TMP/export.err"
fails "without a terminal, no bar on stderr" \
  grep -qaF -e '[#' -e $'\r' "$TMP/import.err" "$TMP/export.err"
ok "and the export is the image" cmp "$TMP/a.img" "$TMP/c.img"
done_testing
