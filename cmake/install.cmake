# Installation and packaging: `cmake --install` puts the tool where a Debian system expects it,
# exports the library as a CMake package, and `cpack` turns the tool into a .deb.
#
#   bin/metalearn                                      the tool            (component runtime)
#   share/man/man1/metalearn.1.gz                      from --help, help2man
#   share/bash-completion/completions/metalearn        from `metalearn completion bash`
#   share/metalearn/configs/*.json                     the example configs
#   share/doc/metalearn/                               README, docs, changelog, copyright
#   lib/libmetalearn.a, include/metalearn/, lib/cmake/metalearn/   the library (component development)
#
# The .deb holds the runtime component only: the tool, not the library.

# --- the tool ---------------------------------------------------------------------------------
install(TARGETS metalearn RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
# The tokenizer's SentencePiece module, which the tool opens at run time (CMakeLists.txt).
install(TARGETS metalearn_sentencepiece LIBRARY DESTINATION ${ML_SPM_MODULE_INSTALL_DIR}
        COMPONENT runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/metalearn/configs
        COMPONENT runtime FILES_MATCHING PATTERN "*.json")
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/BENCHMARKS.md
              ${PROJECT_SOURCE_DIR}/docs/RESULTS.md ${PROJECT_SOURCE_DIR}/docs/PACKAGING.md
              ${PROJECT_SOURCE_DIR}/docs/CONFIG.md
              ${PROJECT_SOURCE_DIR}/docs/copyright
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT runtime)

find_program(GZIP_EXECUTABLE gzip REQUIRED)

# The man page, generated from --help-all (every subcommand's options) so that it never disagrees with the tool. Optional: without
# help2man the tool builds and installs, only the man page is missing (the configure step says so).
find_program(HELP2MAN_EXECUTABLE help2man)
set(ML_MAN_PAGE ${PROJECT_BINARY_DIR}/man/metalearn.1.gz)
if(HELP2MAN_EXECUTABLE)
  add_custom_command(
    OUTPUT ${ML_MAN_PAGE}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    # --version-string: the page does not record the build machine's CUDA state from --version.
    COMMAND ${HELP2MAN_EXECUTABLE} --no-info --section=1 --version-string=${PROJECT_VERSION}
            --help-option=--help-all
            "--name=few-shot meta-learning for e-commerce purchase logs"
            --include=${PROJECT_SOURCE_DIR}/docs/metalearn.h2m
            --output=${PROJECT_BINARY_DIR}/man/metalearn.1 $<TARGET_FILE:metalearn>
    # -n: no name or time stamp inside, so the same page gives the same bytes (Debian policy).
    COMMAND ${GZIP_EXECUTABLE} -9nf ${PROJECT_BINARY_DIR}/man/metalearn.1
    DEPENDS metalearn ${PROJECT_SOURCE_DIR}/docs/metalearn.h2m
    COMMENT "Generating the man page with help2man"
    VERBATIM)
  add_custom_target(metalearn_man ALL DEPENDS ${ML_MAN_PAGE})
  install(FILES ${ML_MAN_PAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
  set(ML_HAVE_MAN_PAGE ON)
else()
  message(WARNING "help2man not found: metalearn builds without its man page "
                  "(apt-get install help2man, then re-run cmake)")
  set(ML_HAVE_MAN_PAGE OFF)
endif()

set(ML_COMPLETION ${PROJECT_BINARY_DIR}/completion/metalearn)
add_custom_command(
  OUTPUT ${ML_COMPLETION}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/completion
  COMMAND sh -c "\"$0\" completion bash > \"$1\"" $<TARGET_FILE:metalearn> ${ML_COMPLETION}
  DEPENDS metalearn
  COMMENT "Generating the bash completion from the command line definition"
  VERBATIM)
add_custom_target(metalearn_completion ALL DEPENDS ${ML_COMPLETION})
install(FILES ${ML_COMPLETION} DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        COMPONENT runtime)

# Debian wants a changelog in the package's doc folder; its date honours SOURCE_DATE_EPOCH.
string(TIMESTAMP ML_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(ML_DEB_MAINTAINER "metalearn maintainers <maintainers@users.noreply.github.com>"
    CACHE STRING "Maintainer of the .deb (name <email>)")
configure_file(${PROJECT_SOURCE_DIR}/cmake/changelog.in ${PROJECT_BINARY_DIR}/doc/changelog @ONLY)
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/doc/changelog.gz
  COMMAND ${GZIP_EXECUTABLE} -9nkf ${PROJECT_BINARY_DIR}/doc/changelog
  DEPENDS ${PROJECT_BINARY_DIR}/doc/changelog
  VERBATIM)
add_custom_target(metalearn_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/doc/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/doc/changelog.gz DESTINATION ${CMAKE_INSTALL_DOCDIR}
        COMPONENT runtime)

# The tool and what installing it needs, without the tests and benchmarks (they take most of a
# first build): `cmake --build build --target tool`, what scripts/setup.sh builds unless --test.
add_custom_target(tool)
add_dependencies(tool metalearn metalearn_completion metalearn_changelog)
if(HELP2MAN_EXECUTABLE)
  add_dependencies(tool metalearn_man)
endif()

# --- the library as a CMake package -------------------------------------------------------------
install(TARGETS metalearn_lib EXPORT metalearnTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
# Every header: the public ones include their neighbours by their src/-relative paths.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/metalearn
        COMPONENT development FILES_MATCHING PATTERN "*.hpp")
install(FILES ${PROJECT_BINARY_DIR}/generated/util/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/metalearn/util COMPONENT development)
set(ML_CMAKE_PACKAGE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/metalearn)
install(EXPORT metalearnTargets NAMESPACE metalearn:: DESTINATION ${ML_CMAKE_PACKAGE_DIR}
        COMPONENT development)
include(CMakePackageConfigHelpers)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/metalearnConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/metalearnConfig.cmake
                              INSTALL_DESTINATION ${ML_CMAKE_PACKAGE_DIR})
# 0.x: a minor version may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/metalearnConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/metalearnConfig.cmake
              ${PROJECT_BINARY_DIR}/metalearnConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FindXXHash.cmake
              ${PROJECT_SOURCE_DIR}/cmake/FindLIBXSMM.cmake
        DESTINATION ${ML_CMAKE_PACKAGE_DIR} COMPONENT development)

# --- the .deb -------------------------------------------------------------------------------------
# Installs and packages take what `cmake --build` built (the README builds first): without this,
# cpack's preinstall step rebuilds every target, and a test suite that runs cpack (install.deb)
# would relink the test binaries under the other tests running beside it.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME metalearn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "few-shot meta-learning for e-commerce purchase logs")
# The extended description only: CPack puts the summary above it as the synopsis. Lines stay
# under 80 columns (lintian).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "metalearn turns raw purchase logs into few-shot tasks (one per product\n"
    "category, brand, shop or user), meta-trains a LibTorch model across the\n"
    "established tasks (MAML, first-order MAML, Reptile, ANIL, Meta-SGD,\n"
    "prototypical networks) and adapts it to a new, data-poor task from a\n"
    "handful of examples.")
string(REPLACE ";" "" CPACK_DEBIAN_PACKAGE_DESCRIPTION "${CPACK_DEBIAN_PACKAGE_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${ML_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the shared libraries the binary really links (dpkg-shlibdeps): Debian's runtime
# packages of libtorch, OpenBLAS, spdlog, fmt, xxHash, SentencePiece, ...
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};metalearn;runtime;/")
include(CPack)
