/* store.h: libcairn's public interface (being written). */
#ifndef CAIRN_STORE_H
#define CAIRN_STORE_H
#include "store/util.h"
#endif
