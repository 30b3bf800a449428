# Turns a file into a C++ source that returns its bytes: cmake -DIN=file -DOUT=file.cc
# -DNAME=function -P embed_asset.cmake. The bytes go in as a hex array (any content is safe).
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR size "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
file(WRITE "${OUT}.tmp" "// Generated from ${IN} by cmake/embed_asset.cmake; do not edit.\n#include \"server/assets.h\"\n\nnamespace sluice::server {\nnamespace {\nconstexpr unsigned char kBytes[] = {\n${body}0};\n}  // namespace\n\nstd::string_view ${NAME}() { return {reinterpret_cast<const char*>(kBytes), ${size}}; }\n\n}  // namespace sluice::server\n")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
