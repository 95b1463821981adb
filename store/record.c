/* record.c: the records of tables that adapters own.
 *
 * libcairn's own modules reach their tables through the backend directly
 * (ref.c, branch.c, pin.c ...).  A few tables belong to components above
 * the store: CAIRN_TABLE_VMS holds qemu-glue's VM records, which gc and
 * retention read (a commit a live VM runs from is kept).  These functions
 * give those components the backend's record operations inside a store
 * transaction, and nothing more: the format of each record is documented
 * by the component that owns its table (qemu-glue/vm.h for VMs).
 *
 * Writes are allowed only to adapter tables, so that no adapter can break
 * the invariants of the records libcairn keeps (refs, working state,
 * sessions).
 */
#include <config.h>

#include <errno.h>

#include "store/internal.h"

static bool
adapter_table (enum cairn_table table)
{
  return table == CAIRN_TABLE_VMS;
}

int
cairn_record_get (struct cairn_txn *txn, enum cairn_table table,
                  const void *key, size_t klen, struct cairn_val *value)
{
  if ((unsigned) table >= CAIRN_TABLES)
    return -EINVAL;
  return TOPS (txn)->record_get (txn->bt, table, key, klen, value);
}

int
cairn_record_put (struct cairn_txn *txn, enum cairn_table table,
                  const void *key, size_t klen, const void *value,
                  size_t vlen)
{
  if (!adapter_table (table))
    return -EPERM;
  if (!txn->write)
    return -EROFS;
  return TOPS (txn)->record_put (txn->bt, table, key, klen, value, vlen);
}

int
cairn_record_delete (struct cairn_txn *txn, enum cairn_table table,
                     const void *key, size_t klen)
{
  if (!adapter_table (table))
    return -EPERM;
  if (!txn->write)
    return -EROFS;
  return TOPS (txn)->record_delete (txn->bt, table, key, klen);
}

int
cairn_record_scan (struct cairn_txn *txn, enum cairn_table table,
                   const void *prefix, size_t plen,
                   cairn_record_scan_fn fn, void *arg)
{
  if ((unsigned) table >= CAIRN_TABLES)
    return -EINVAL;
  return TOPS (txn)->record_scan (txn->bt, table, prefix, plen, NULL, 0,
                                  fn, arg);
}
