# Finds LIBXSMM (Debian: libxsmm-dev, a static library with a pkg-config file but no CMake
# package). Defines LIBXSMM_FOUND and the imported target LIBXSMM::LIBXSMM, which carries the
# system libraries libxsmm.pc lists (threads, rt, dl, m).
find_path(LIBXSMM_INCLUDE_DIR libxsmm.h)
find_library(LIBXSMM_LIBRARY NAMES xsmm)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LIBXSMM REQUIRED_VARS LIBXSMM_LIBRARY LIBXSMM_INCLUDE_DIR)
if(LIBXSMM_FOUND AND NOT TARGET LIBXSMM::LIBXSMM)
  find_package(Threads REQUIRED)
  add_library(LIBXSMM::LIBXSMM UNKNOWN IMPORTED)
  set_target_properties(
    LIBXSMM::LIBXSMM
    PROPERTIES IMPORTED_LOCATION "${LIBXSMM_LIBRARY}"
               INTERFACE_INCLUDE_DIRECTORIES "${LIBXSMM_INCLUDE_DIR}"
               INTERFACE_LINK_LIBRARIES "Threads::Threads;rt;${CMAKE_DL_LIBS};m")
endif()
mark_as_advanced(LIBXSMM_INCLUDE_DIR LIBXSMM_LIBRARY)
