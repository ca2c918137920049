//! Hardware-specific code. Only x86-64 with VT-x exists; an AMD SVM backend
//! would sit beside it and execute the same kerncore decisions.

pub mod x86_64;
