#include "parse/document.h"

namespace sluice::parse {

const char* block_kind_name(BlockKind k) {
  switch (k) {
    case BlockKind::kHeading: return "heading";
    case BlockKind::kParagraph: return "paragraph";
    case BlockKind::kListItem: return "list_item";
    case BlockKind::kTableRow: return "table_row";
    case BlockKind::kCode: return "code";
    case BlockKind::kRecord: return "record";
  }
  return "paragraph";
}

}  // namespace sluice::parse
