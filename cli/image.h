/* image.h: disk image files as sources and sinks of volume bytes.
 *
 * Raw files are read and written directly (holes found with SEEK_DATA /
 * SEEK_HOLE, written sparsely).  Every other format (qcow2, vmdk, ...)
 * goes through qemu-nbd, started by libnbd with systemd socket activation,
 * so cairn never parses a format QEMU already knows.
 */
#ifndef CAIRN_IMAGE_H
#define CAIRN_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct image;

/* Opens PATH for reading.  FORMAT NULL detects qcow2 by its magic and
 * takes anything else as raw.  Errors carry a message (cairn_last_error). */
int image_open_read (const char *path, const char *format,
                     struct image **img);
/* Creates PATH (replacing it) of SIZE bytes in FORMAT ("raw" or any
 * qemu-img format), ready for writing.  Raw also writes to "-" (stdout)
 * and to a device (a block device must hold SIZE bytes). */
int image_create (const char *path, const char *format, uint64_t size,
                  struct image **img);
uint64_t image_size (const struct image *img);
/* True if IMG does not read as zeros where nothing was written (stdout,
 * a device): the writer must write holes too. */
bool image_fills_holes (const struct image *img);
/* An import source reading IMG. */
void image_source (struct image *img, struct cairn_import_source *src);
int image_write (struct image *img, const void *buf, size_t len,
                 uint64_t off);
/* Flushes and closes; 0 or a negative errno (the data may be lost). */
int image_close (struct image *img);

#endif /* CAIRN_IMAGE_H */
