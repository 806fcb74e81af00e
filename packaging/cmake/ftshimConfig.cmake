# find_package(ftshim CONFIG): imported targets for the ftshim libraries, relocatable (paths are
# computed from this file's location, <prefix>/lib/cmake/ftshim).
#
#   ftshim::ftshim_static   libftshim.a, its symbols kept private to what links it (the default
#                           choice for a Python extension: the wheel carries no extra .so)
#   ftshim::ftshim          libftshim.so.1 (SONAME libftshim.so.1; ship it, e.g. auditwheel repair)
#   ftshim::loader_static   libftshim_loader.a
#   ftshim::loader          libftshim_loader.so.1
#
# All four carry the include directory (ftshim.h, ftshim_status.h, ftshim_loader.h).
get_filename_component(_ftshim_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
set(ftshim_INCLUDE_DIR "${_ftshim_prefix}/include")
set(ftshim_LIBRARY_DIR "${_ftshim_prefix}/lib")

if(NOT TARGET ftshim::ftshim)
  foreach(_ftshim_lib IN ITEMS ftshim loader)
    if(_ftshim_lib STREQUAL "ftshim")
      set(_ftshim_file libftshim)
    else()
      set(_ftshim_file libftshim_loader)
    endif()
    add_library(ftshim::${_ftshim_lib} SHARED IMPORTED)
    set_target_properties(ftshim::${_ftshim_lib} PROPERTIES
      IMPORTED_LOCATION "${ftshim_LIBRARY_DIR}/${_ftshim_file}.so.1"
      IMPORTED_SONAME "${_ftshim_file}.so.1"
      INTERFACE_INCLUDE_DIRECTORIES "${ftshim_INCLUDE_DIR}")
    add_library(ftshim::${_ftshim_lib}_static STATIC IMPORTED)
    set_target_properties(ftshim::${_ftshim_lib}_static PROPERTIES
      IMPORTED_LOCATION "${ftshim_LIBRARY_DIR}/${_ftshim_file}.a"
      INTERFACE_INCLUDE_DIRECTORIES "${ftshim_INCLUDE_DIR}"
      # Rust's standard library inside the archive needs these; --exclude-libs keeps every
      # symbol of the archive out of the linking module's dynamic symbol table.
      INTERFACE_LINK_LIBRARIES "gcc_s;pthread;dl;m"
      INTERFACE_LINK_OPTIONS "LINKER:--exclude-libs,${_ftshim_file}.a;LINKER:--gc-sections")
  endforeach()
endif()

unset(_ftshim_lib)
unset(_ftshim_file)
unset(_ftshim_prefix)
set(ftshim_FOUND TRUE)
